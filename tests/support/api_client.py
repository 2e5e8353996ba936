"""An API under test: the real FastAPI app over the test database, a user with a password and a token."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tradetrail.server.app import create_app
from tradetrail.services.accounts.users import create_token, create_user

PASSWORD = "correct horse battery"


@dataclass
class ApiUser:
    username: str
    token: str
    client: TestClient

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kw):
        return self.client.get(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw):
        return self.client.post(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def put(self, url: str, **kw):
        return self.client.put(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def delete(self, url: str, **kw):
        return self.client.delete(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)


def api_user(app, username: str, *, password: str | None = PASSWORD, client: TestClient | None = None) -> ApiUser:
    """Create ``username`` (unless it exists, e.g. the demo user) and a token for it."""
    from sqlalchemy import select

    from tradetrail.db.models import User
    from tradetrail.services.accounts.users import set_password

    with app.Session() as s:
        exists = s.scalar(select(User.id).where(User.username == username)) is not None
    if not exists:
        create_user(app, username, password)
    elif password is not None:
        set_password(app, username, password)
    token = create_token(app, username, "test")["token"]
    return ApiUser(username, token, client or TestClient(create_app(app, background=False)))
