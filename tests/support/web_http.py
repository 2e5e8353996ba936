"""The web UI over HTTP without a browser (``TestClient`` on the real app and test database): sign in through
the login form and read back what a page holds, for the checks that need no JavaScript."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.api_client import PASSWORD
from tradetrail.server.app import create_app

META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')


def web_client(app) -> TestClient:
    return TestClient(create_app(app, background=False), follow_redirects=False)


def login_form(client: TestClient, username: str, password: str, next_url: str = "/", token: str | None = None):
    """POST the login form as a browser would (the form's own token first, from GET /login)."""
    page = client.get("/login")
    found = token if token is not None else LOGIN_TOKEN.search(page.text).group(1)
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "login_token": found})


def sign_in(client: TestClient, username: str = "demo", password: str = PASSWORD) -> str:
    """Signed in; returns the CSRF token the pages carry."""
    answer = login_form(client, username, password)
    assert answer.status_code == 303, answer.text
    return page_csrf(client.get("/").text)


def page_csrf(html: str) -> str:
    return META_CSRF.search(html).group(1)
