"""Sign-in and sign-out: the API's browser sessions, from a form.

The login form carries its own CSRF token (a random value in a SameSite cookie and a hidden field that
must match), so another site cannot sign a visitor into an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tradetrail.services.accounts import users as accounts
from tradetrail.services.accounts.cookies import CSRF_COOKIE, SESSION_COOKIE
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, cookie_options, safe_next
from tradetrail.web.templating import render

router = page_router()
LOGIN_CSRF_COOKIE = "tradetrail_login_csrf"


def _form(request: Request, next_url: str, *, status: int = 200, error: str | None = None,
          username: str = "") -> Response:
    app = request.app.state.app
    token = secrets.token_urlsafe(24)
    request.state.set_cookies = [(LOGIN_CSRF_COOKIE, token, cookie_options(app, 3600, http_only=True))]
    return render(request, "login.html", status_code=status, next_url=next_url, login_token=token, error=error,
                  username=username)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    app = request.app.state.app
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and accounts.principal_for_session(app, secret) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, safe_next(next))


@router.post("/login")
async def login(request: Request, form: Form) -> Response:
    app = request.app.state.app
    next_url = safe_next(form.get("next"))
    username, password = form.get("username", "").strip(), form.get("password", "")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not expected or not hmac.compare_digest(expected, form.get("login_token", "")):
        return _form(request, next_url, status=403, username=username,
                     error="The sign-in form expired (or cookies are off); please try again.")
    client = request.client.host if request.client else "unknown"
    try:
        principal = await run_in_threadpool(accounts.check_password_login, app, username, password, client)
    except accounts.TooManyAttempts as exc:
        response = _form(request, next_url, status=429, username=username, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except accounts.LoginRefused as exc:
        return _form(request, next_url, status=401, username=username, error=str(exc))
    except accounts.AccountError as exc:
        return _form(request, next_url, status=422, error=str(exc))
    secret, csrf, _ = await run_in_threadpool(accounts.start_session, app, principal.user_id)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, **cookie_options(app, http_only=True))
    response.set_cookie(CSRF_COOKIE, csrf, **cookie_options(app, http_only=False))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, user: ChangingUser) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        accounts.end_session(request.app.state.app, secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
