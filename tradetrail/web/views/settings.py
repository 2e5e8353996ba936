"""``/settings``: API tokens (create — the token is shown once, on the answer to the form — and revoke) and
the password (the current one first; a new password ends every browser session, this one too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response

from tradetrail.services.accounts import users as accounts
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageUser
from tradetrail.web.templating import render

router = page_router()
TokenId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _page(request: Request, user, *, new_token: dict | None = None, errors: dict | None = None,
          status: int = 200) -> Response:
    return render(request, "settings.html", status_code=status,
                  tokens=accounts.list_tokens(request.app.state.app, user.user_id), new_token=new_token,
                  errors=errors or {}, min_password=accounts.MIN_PASSWORD)


@router.get("/settings")
def settings_page(request: Request, user: PageUser) -> Response:
    return _page(request, user)


@router.post("/settings/tokens")
def create_token(request: Request, user: ChangingUser, form: Form) -> Response:
    """The new token is in this answer only (never stored, never shown again; the page is not cached)."""
    try:
        token = accounts.create_token(request.app.state.app, user.username, form.get("name", ""))
    except accounts.AccountError as exc:
        return _page(request, user, errors={"name": str(exc)}, status=422)
    return _page(request, user, new_token=token)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: TokenId, user: ChangingUser) -> Response:
    accounts.revoke_token(request.app.state.app, user.user_id, token_id)  # NotFound for another user's
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/password")
def change_password(request: Request, user: ChangingUser, form: Form) -> Response:
    """The current password is checked like a sign-in (wrong ones count against the same limit)."""
    app = request.app.state.app
    new, again = form.get("new_password", ""), form.get("new_password_again", "")
    client = request.client.host if request.client else "unknown"
    try:
        accounts.check_password_login(app, user.username, form.get("current_password", ""), client)
    except accounts.TooManyAttempts as exc:
        return _page(request, user, errors={"current_password": f"too many wrong passwords; try again in "
                                                                f"{exc.args[0]} s"}, status=429)
    except (accounts.LoginRefused, accounts.AccountError):
        return _page(request, user, errors={"current_password": "this is not your current password"}, status=422)
    if new != again:
        return _page(request, user, errors={"new_password_again": "the two new passwords differ"}, status=422)
    try:
        accounts.set_password(app, user.username, new)
    except accounts.AccountError as exc:
        return _page(request, user, errors={"new_password": str(exc)}, status=422)
    return RedirectResponse("/login?next=/settings", status_code=303)
