"""Accounts over HTTP: password login with a session cookie and CSRF, rate limiting, tokens, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.api_client import PASSWORD, api_user
from tradetrail.db.account_models import ApiToken, WebSession
from tradetrail.db.models import User
from tradetrail.server.app import create_app
from tradetrail.services.accounts.users import AccountError, create_user, sha256

BIN = Path(sys.executable).with_name("tradetrail")


@pytest.fixture
def client(app):
    create_user(app, "alice", PASSWORD)
    return TestClient(create_app(app, background=False))


def _login(client, password=PASSWORD, username="alice"):
    return client.post("/api/auth/login", json={"username": username, "password": password})


def test_password_is_stored_as_argon2_and_weak_ones_are_refused(app):
    create_user(app, "alice", PASSWORD)
    with app.Session() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "alice"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(AccountError, match="at least 10"):
        create_user(app, "bob", "short")
    with pytest.raises(AccountError, match="exists"):
        create_user(app, "alice", PASSWORD)
    with pytest.raises(AccountError, match="user name"):
        create_user(app, "../etc", PASSWORD)


def test_login_sets_an_httponly_lax_session_and_state_changes_need_csrf(app, client):
    r = _login(client)
    assert r.status_code == 200, r.text
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("tradetrail_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("tradetrail_csrf="))
    assert "HttpOnly" not in csrf_cookie
    csrf = r.json()["csrf_token"]
    with app.Session() as s:  # only hashes are stored
        row = s.scalars(select(WebSession)).one()
    secret = client.cookies.get("tradetrail_session")
    assert row.session_hash == sha256(secret) and row.csrf_hash == sha256(csrf) and secret != row.session_hash

    assert client.get("/api/auth/me").json() == {"id": row.user_id, "username": "alice", "via": "session"}
    no_csrf = client.post("/api/trading-state/halt", json={})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf"
    wrong = client.post("/api/trading-state/halt", json={}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    ok = client.post("/api/trading-state/halt", json={}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["state"] == "HALTED"

    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("tradetrail_session", secret)  # a stolen copy of the cookie no longer works
    assert client.get("/api/auth/me").status_code == 401


def test_wrong_passwords_are_rate_limited_per_user(app, client):
    for _ in range(5):
        r = _login(client, "wrong password!")
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong user name or password"
    r = _login(client)  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "rate_limited"
    other = _login(client, username="nobody")  # an unknown name answers like a wrong password
    assert other.status_code == 401 and other.json()["error"]["message"] == "wrong user name or password"


def test_a_user_without_password_cannot_log_in(app, client):
    create_user(app, "robot", None)
    assert _login(client, username="robot", password="anything at all").status_code == 401


def test_tokens_are_shown_once_stored_hashed_and_revocable(app, client):
    alice = api_user(app, "alice", password=None, client=client)
    r = alice.post("/api/auth/tokens", json={"name": "script"})
    assert r.status_code == 201
    new = r.json()
    with app.Session() as s:
        stored = s.scalar(select(ApiToken.token_hash).where(ApiToken.id == new["id"]))
    assert stored == sha256(new["token"]) and new["token"] not in stored
    listed = alice.get("/api/auth/tokens").json()
    assert {t["id"] for t in listed} >= {new["id"]} and all("token" not in t for t in listed)
    headers = {"Authorization": f"Bearer {new['token']}"}
    assert client.get("/api/auth/me", headers=headers).json()["via"] == "token"
    assert alice.delete(f"/api/auth/tokens/{new['id']}").json()["revoked_at"] is not None
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_cli_creates_users_and_prints_a_working_token(app, cli_env):
    run = lambda *args: subprocess.run([str(BIN), *args], env=cli_env, capture_output=True, text=True,  # noqa: E731
                                       timeout=120)
    made = run("users", "create", "carol", "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    assert run("users", "create", "carol", "--password", PASSWORD).returncode == 2
    weak = run("users", "create", "dave", "--password", "123")
    assert weak.returncode == 2 and "at least 10" in weak.stderr
    out = run("tokens", "create", "carol", "--label", "laptop")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("tt_") and "not shown again" in out.stderr
    client = TestClient(create_app(app, background=False))
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "carol"
    assert client.post("/api/auth/login", json={"username": "carol", "password": PASSWORD}).status_code == 200
    listed = run("tokens", "list", "carol", "--json")
    assert token not in listed.stdout and '"laptop"' in listed.stdout


def test_cli_broker_status_and_symbols(app, cli_env):
    import json

    from tests.support.helpers import demo

    demo(app)

    status = subprocess.run([str(BIN), "broker", "status", "--json"], env=cli_env, capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["healthy"] is True
    found = subprocess.run([str(BIN), "symbols", "search", "S&P", "--json"], env=cli_env, capture_output=True,
                           text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert [r["symbol"] for r in json.loads(found.stdout)] == ["SPX"]
    stats = subprocess.run([str(BIN), "symbols", "stats", "--json"], env=cli_env, capture_output=True, text=True,
                           timeout=120)
    assert json.loads(stats.stdout)["total"] >= 1
