"""Who is looking at a page, and the CSRF check on every state change a page makes.

Pages use the API's browser sessions (``tradetrail_session``, HttpOnly). The CSRF token is stored only as a
hash, so a page reads it back from the browser's readable ``tradetrail_csrf`` cookie (checked against the
hash) to put it in the ``<meta name="csrf-token">`` tag our script copies into htmx's ``X-CSRF-Token``
header, and into a hidden ``csrf_token`` field of every plain form; a browser that lost the cookie gets a
fresh token. A state change is accepted only with the token in the header or the field.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request

from tradetrail.services.accounts import users as accounts
from tradetrail.services.accounts.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tradetrail.services.accounts.users import Principal

CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 50


class LoginRequired(Exception):
    """No live session: the page redirects to ``/login?next=<where the user was going>``."""

    def __init__(self, next_url: str):
        super().__init__(next_url)
        self.next_url = next_url


class PageError(Exception):
    """A page refuses the request (403 CSRF, 400 bad form, 409 conflict, ...); shown as an error page."""

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def cookie_options(app, max_age: int | None = None, *, http_only: bool) -> dict:
    return {"max_age": max_age if max_age is not None else app.settings.session_ttl_s, "httponly": http_only,
            "samesite": "lax", "secure": app.settings.cookie_secure, "path": "/"}


def safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//host``, ``/\\host`` or a scheme (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(
            c in value for c in "\r\n\t\\") or len(value) > 2000:
        return "/"
    return value


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(safe_next(target), safe="/")


def page_user(request: Request) -> Principal:
    """The signed-in user of a page; ``LoginRequired`` otherwise. Sets ``request.state`` for rendering."""
    app = request.app.state.app
    secret = request.cookies.get(SESSION_COOKIE)
    principal = accounts.principal_for_session(app, secret) if secret else None
    if principal is None:
        raise LoginRequired(login_url(request))
    token = request.cookies.get(CSRF_COOKIE)
    cookies = []
    if not accounts.csrf_matches(principal, token):
        token = accounts.renew_csrf(app, secret)
        if token is None:  # ended between the two queries
            raise LoginRequired(login_url(request))
        principal = accounts.principal_for_session(app, secret) or principal
        cookies.append((CSRF_COOKIE, token, cookie_options(app, http_only=False)))
    request.state.user, request.state.csrf_token, request.state.set_cookies = principal, token, cookies
    return principal


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``), first value per name. The body is already
    bounded by the API's request limits; a NUL or undecodable byte is refused (PostgreSQL stores neither)."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, "Unsupported form", "forms are sent as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(400, "Bad form", f"the form could not be read: {exc}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise PageError(400, "Bad form", f"the field {name[:40]!r} holds a NUL character")
        fields.setdefault(name, value)
    return fields


Form = Annotated[dict[str, str], Depends(form_fields)]
PageUser = Annotated[Principal, Depends(page_user)]


async def changing_user(request: Request, form: Form, user: PageUser) -> Principal:
    """The user of a state-changing request, after its CSRF token (header or form field) is checked."""
    token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not accounts.csrf_matches(user, token):
        raise PageError(403, "Form expired", "This request did not carry your session's CSRF token. Reload the "
                                             "page and try again.")
    return user


ChangingUser = Annotated[Principal, Depends(changing_user)]
