"""``/settings``: API tokens (create — the token is shown once, on the answer to the form — and revoke), the
password (the current one first; a new password ends every browser session, this one too), and notification
channels (add, test, remove; a channel's URL is never shown again, only its scheme and host)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response

from tradetrail.services.accounts import users as accounts
from tradetrail.services.notifications import channels as notify
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageUser
from tradetrail.web.templating import render

router = page_router()
TokenId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _page(request: Request, user, *, new_token: dict | None = None, errors: dict | None = None,
          status: int = 200, tested: dict | None = None) -> Response:
    app = request.app.state.app
    return render(request, "settings.html", status_code=status,
                  tokens=accounts.list_tokens(app, user.user_id), new_token=new_token,
                  errors=errors or {}, min_password=accounts.MIN_PASSWORD,
                  channels=notify.list_channels(app, user.user_id), event_kinds=notify.KINDS, tested=tested,
                  notify_key_set=app.settings.notify_key is not None)


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


@router.post("/settings/notifications")
def add_channel(request: Request, user: ChangingUser, form: Form) -> Response:
    """The URL goes in encrypted; the page shows it only as scheme and host from now on."""
    events = form.get("events", "").strip()  # comma-separated kinds; empty: all
    try:
        notify.add_channel(request.app.state.app, user.user_id, form.get("url", ""), events or None)
    except (notify.ChannelError, notify.NotifyKeyMissing) as exc:
        return _page(request, user, errors={"channel_url": str(exc)}, status=422)
    return RedirectResponse("/settings#notifications-title", status_code=303)


@router.post("/settings/notifications/{channel_id}/test")
def test_channel(request: Request, channel_id: TokenId, user: ChangingUser) -> Response:
    try:
        result = notify.test_channel(request.app.state.app, user.user_id, channel_id)  # NotFound for another's
    except (notify.NotifyKeyMissing, notify.ChannelUnreadable) as exc:
        result = {"id": channel_id, "ok": False, "error": str(exc)}
    return _page(request, user, tested=result)


@router.post("/settings/notifications/{channel_id}/remove")
def remove_channel(request: Request, channel_id: TokenId, user: ChangingUser) -> Response:
    notify.remove_channel(request.app.state.app, user.user_id, channel_id)
    return RedirectResponse("/settings#notifications-title", status_code=303)
