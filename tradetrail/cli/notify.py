"""The ``notify`` group: notification channels (Apprise URLs), each with the events it wants."""

from __future__ import annotations

from typing import Annotated

import typer

from tradetrail.cli.common import JsonOpt, NotFound, UserOpt, _app, _emit, _fail, _user_id, console

notify_app = typer.Typer(no_args_is_help=True, help="Notification channels (Apprise URLs; docs/notifications.md).")
EventsOpt = Annotated[str | None, typer.Option("--events", help="comma-separated event kinds (default: all), e.g. "
                                                                "order_filled,execution_failed")]


@notify_app.command("add")
def notify_add(url: Annotated[str, typer.Argument(help="an Apprise URL, e.g. json://host:port/path")],
               user: UserOpt = "demo", events: EventsOpt = None, as_json: JsonOpt = False) -> None:
    """Add a channel; the URL is stored encrypted and never shown again (only scheme and host)."""
    from tradetrail.services.notifications.channels import ChannelError, NotifyKeyMissing, add_channel

    application = _app()
    try:
        row = add_channel(application, _user_id(application, user), url, events)
    except (ChannelError, NotifyKeyMissing) as exc:
        _fail(str(exc))
    _emit(row, as_json, lambda r: console.print(
        f"channel {r['id']} added: {r['channel']} for {', '.join(r['events']).replace('*', 'all events')}",
        highlight=False))


@notify_app.command("list")
def notify_list(user: UserOpt = "demo", as_json: JsonOpt = False) -> None:
    """The user's channels (redacted) and the events each wants."""
    from tradetrail.cli.common import _print_rows
    from tradetrail.services.notifications.channels import list_channels

    application = _app()
    rows = list_channels(application, _user_id(application, user))
    _emit(rows, as_json, lambda rs: _print_rows("notification channels", [
        {**r, "events": ",".join(r["events"]).replace("*", "all")} for r in rs], ["id", "channel", "events",
                                                                                  "created_at"]))


@notify_app.command("test")
def notify_test(channel_id: Annotated[int, typer.Argument(min=1)], user: UserOpt = "demo",
                as_json: JsonOpt = False) -> None:
    """Send a test message now; exit 1 if the receiver did not accept it."""
    from tradetrail.services.notifications.channels import ChannelUnreadable, NotifyKeyMissing, test_channel

    application = _app()
    try:
        result = test_channel(application, _user_id(application, user), channel_id)
    except (NotFound, NotifyKeyMissing, ChannelUnreadable) as exc:
        _fail(str(exc))
    _emit(result, as_json, lambda r: console.print(
        f"channel {r['id']} ({r['channel']}): " + ("delivered" if r["ok"] else f"NOT delivered: {r['error']}"),
        highlight=False))
    if not result["ok"]:
        raise typer.Exit(1)


@notify_app.command("remove")
def notify_remove(channel_id: Annotated[int, typer.Argument(min=1)], user: UserOpt = "demo") -> None:
    """Remove a channel (its undelivered messages with it)."""
    from tradetrail.services.notifications.channels import remove_channel

    application = _app()
    try:
        row = remove_channel(application, _user_id(application, user), channel_id)
    except NotFound as exc:
        _fail(str(exc))
    console.print(f"channel {row['id']} ({row['channel']}) removed", highlight=False)


@notify_app.command("rekey")
def notify_rekey(as_json: JsonOpt = False) -> None:
    """Re-encrypt every channel under the first key of TRADETRAIL_NOTIFY_KEY (list the new key first, then the
    old ones, comma-separated; after this the old keys can be dropped)."""
    from tradetrail.services.notifications.channels import NotifyKeyMissing, rekey_channels

    try:
        result = rekey_channels(_app())
    except NotifyKeyMissing as exc:
        _fail(str(exc))
    _emit(result, as_json, lambda r: console.print(
        f"{r['rekeyed']} channel(s) re-encrypted under the first key"
        + (f"; not readable with any listed key: {', '.join(map(str, r['unreadable']))}" if r["unreadable"] else ""),
        highlight=False))
    if result["unreadable"]:
        raise typer.Exit(1)
