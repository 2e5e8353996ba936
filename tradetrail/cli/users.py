"""The ``users`` and ``tokens`` groups: web and API logins and API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tradetrail.cli.common import (
    JsonOpt,
    NotFound,
    _app,
    _emit,
    _fail,
    _user_id,
    console,
    err,
)
from tradetrail.cli.tables import print_table, when

users_app = typer.Typer(no_args_is_help=True, help="Users (API and web logins).")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (sent as 'Authorization: Bearer <token>').")


def _password(value: str | None, ask: bool) -> str | None:
    if value is None and ask:
        value = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("create")
def users_create(name: str,
                 password: Annotated[str | None, typer.Option(help="login password (asked for if omitted)")] = None,
                 no_password: Annotated[bool, typer.Option("--no-password", help="token access only")] = False
                 ) -> None:
    """Create user NAME with an argon2-hashed password."""
    from tradetrail.services.accounts.users import AccountError, create_user

    try:
        user = create_user(_app(), name, None if no_password else _password(password, True))
    except AccountError as exc:
        _fail(str(exc))
    console.print(f"user [bold]{user['username']}[/bold] created (id {user['id']})")


@users_app.command("set-password")
def users_set_password(name: str,
                       password: Annotated[str | None, typer.Option(help="new password (asked for if omitted)")] = None
                       ) -> None:
    """Set NAME's password (ends their browser sessions)."""
    from tradetrail.services.accounts.users import AccountError, set_password

    try:
        set_password(_app(), name, _password(password, True))
    except (AccountError, NotFound) as exc:
        _fail(str(exc))
    console.print(f"password of [bold]{name}[/bold] changed")


@tokens_app.command("create")
def tokens_create(name: Annotated[str, typer.Argument(help="the user the token acts for")],
                  label: Annotated[str, typer.Option(help="what the token is for")] = "cli") -> None:
    """Create an API token for user NAME and print it (it is shown only this once)."""
    from tradetrail.services.accounts.users import AccountError, create_token

    try:
        token = create_token(_app(), name, label)
    except (AccountError, NotFound) as exc:
        _fail(str(exc))
    err.print(f"token {token['id']} ({token['name']}) for {name}; store it now, it is not shown again:")
    sys.stdout.write(token["token"] + "\n")


@tokens_app.command("list")
def tokens_list(name: Annotated[str, typer.Argument(help="user")], as_json: JsonOpt = False) -> None:
    """NAME's tokens (prefix only) with when they were last used."""
    from tradetrail.services.accounts.users import list_tokens

    application = _app()
    rows = list_tokens(application, _user_id(application, name))
    _emit(rows, as_json, lambda r: print_table(f"tokens of {name}", [
        "id", "name", "prefix", "created", "last used", "revoked"], [
        [str(t["id"]), t["name"], t["prefix"], when(t["created_at"]),
         when(t["last_used_at"]) if t["last_used_at"] else "never", when(t["revoked_at"]) if t["revoked_at"] else ""]
        for t in r], right={0}))


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="user")], token_id: int) -> None:
    """Revoke token TOKEN_ID of user NAME."""
    from tradetrail.services.accounts.users import revoke_token

    application = _app()
    try:
        revoke_token(application, _user_id(application, name), token_id)
    except NotFound as exc:
        _fail(str(exc))
    console.print(f"token {token_id} revoked")
