"""The web tests' shared fixtures: the demo user, and a client signed in as them with its CSRF token."""

from __future__ import annotations

import pytest

from tests.support.web_browser import demo_user
from tests.support.web_http import sign_in, web_client


@pytest.fixture
def user_id(app) -> int:
    return demo_user(app)[0]


@pytest.fixture
def client(app, user_id):
    """Signed in as the demo user; ``client.csrf`` is the token its forms carry."""
    client = web_client(app)
    client.csrf = sign_in(client)
    return client
