"""Who is asking: an API token (``Authorization: Bearer``) or a browser session cookie.

Session requests that change state must carry the session's CSRF token in ``X-CSRF-Token`` (the login answer
returns it, and a readable ``tradetrail_csrf`` cookie holds it for the web UI). Bearer requests need none:
a browser never attaches a bearer token by itself.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from tradetrail.api.errors import ApiError
from tradetrail.services.accounts.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE  # noqa: F401 - re-exported
from tradetrail.services.accounts.users import Principal, csrf_matches, principal_for_session, principal_for_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(auto_error=False, description="an API token from `tradetrail tokens create`")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                             description="browser session (POST /api/auth/login)")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def current_user(request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
                 session: str | None = Depends(cookie_scheme)) -> Principal:
    app = request.app.state.app
    if request.headers.get("authorization"):
        if credentials is None or not credentials.credentials:
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        principal = principal_for_token(app, credentials.credentials.strip())
        if principal is None:
            raise _unauthorized("the API token is unknown or revoked")
        return principal
    if session:
        principal = principal_for_session(app, session)
        if principal is None:
            raise _unauthorized("the session has expired or ended; log in again")
        if request.method not in SAFE_METHODS and not csrf_matches(principal, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "csrf", f"state-changing requests with a session need the {CSRF_HEADER} header "
                                        "from the login answer")
        return principal
    raise _unauthorized("authentication required: send 'Authorization: Bearer <token>' or log in")
