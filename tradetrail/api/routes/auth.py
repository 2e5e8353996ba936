"""Login, logout, the caller, and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tradetrail.api.deps import AppDep, RowId, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.schemas import LoginIn, LoginOut, NewTokenOut, TokenIn, TokenOut, UserOut
from tradetrail.api.security import CSRF_COOKIE, SESSION_COOKIE
from tradetrail.services.accounts import users as accounts

router = APIRouter(prefix="/api/auth", tags=["accounts"], responses=ERROR_RESPONSES)


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response, app: AppDep) -> dict:
    """Password login: sets the HttpOnly session cookie and returns the CSRF token for state changes."""
    client = request.client.host if request.client else "unknown"
    principal = accounts.check_password_login(app, body.username, body.password, client)  # 401/429: api/errors.py
    secret, csrf, expires = accounts.start_session(app, principal.user_id)
    secure, max_age = app.settings.cookie_secure, app.settings.session_ttl_s
    response.set_cookie(SESSION_COOKIE, secret, max_age=max_age, httponly=True, samesite="lax", secure=secure,
                        path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/")
    return {"user": {"id": principal.user_id, "username": principal.username, "via": "session"},
            "csrf_token": csrf, "expires_at": expires.isoformat()}


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, app: AppDep, user: UserDep) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if user.via == "session" and secret:
        accounts.end_session(app, secret)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserOut)
def me(user: UserDep) -> dict:
    return {"id": user.user_id, "username": user.username, "via": user.via}


@router.get("/tokens", response_model=list[TokenOut])
def tokens(app: AppDep, user: UserDep) -> list[dict]:
    return accounts.list_tokens(app, user.user_id)


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def new_token(body: TokenIn, app: AppDep, user: UserDep) -> dict:
    """A new API token; the answer is the only place it is ever shown."""
    return accounts.create_token(app, user.username, body.name)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke(token_id: RowId, app: AppDep, user: UserDep) -> dict:
    return accounts.revoke_token(app, user.user_id, token_id)
