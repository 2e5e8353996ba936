"""Planted secrets (the model's API key, the IBKR OAuth secret, S3 keys, a password, a notification channel's
URL and the key channels are encrypted with) never appear in any response, log line, lineage row or stored
artifact — even when the model's error message echoes the key, and while notifications are delivered."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import select, text

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.db.models import Base
from tradetrail.runtime.build import build_app
from tradetrail.settings import Settings

LLM_KEY = "sk-PLANTED-llm-key-7f3a9c2e41d0"
IBKR_SECRET = "PLANTED-ibkr-oauth-secret-55aa"
IBKR_TOKEN = "PLANTED-ibkr-oauth-token-66bb"
S3_SECRET = "PLANTED-s3-secret-77cc"
PASSWORD = "PLANTED-password-88dd"
NOTIFY_TOKEN = "PLANTED-notify-token-99ee"
NOTIFY_PASSWORD = "PLANTED-notify-pass-aa11"
# channels whose host is the token (lower case: a URL's host is shown lower-cased, and the check is exact)
PUSHBULLET_TOKEN = "planted-pushbullet-token-bb22"
PUSHOVER_USER = "plantedpoveruserkey000000cc33"
PUSHOVER_TOKEN = "plantedpoverapptoken00000dd44"
NTFY_TOPIC = "planted-ntfy-topic-ee55"
NOTIFY_KEY = "bX9QeH2cW0lVd3pTTk1hYkQ4cUZ6eG9ZUmJ0SmVLc1A="  # a Fernet key (32 bytes, url-safe base64)
SECRETS = (LLM_KEY, IBKR_SECRET, IBKR_TOKEN, S3_SECRET, PASSWORD, NOTIFY_TOKEN, NOTIFY_PASSWORD, NOTIFY_KEY,
           PUSHBULLET_TOKEN, PUSHOVER_USER, PUSHOVER_TOKEN, NTFY_TOPIC)
BUY = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 1202.0, "stop_loss": 1170.0,
       "take_profit": 1270.0, "key_factors": ["trend"], "reasoning": "Uptrend."}


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def _assert_clean(where: str, blob: str) -> None:
    for secret in SECRETS:
        assert secret not in blob, f"{where} leaks a planted secret"
        assert secret[:-4] not in blob, f"{where} leaks most of a planted secret"


def _wait(user, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        body = user.get(f"/api/lineage/execution/{execution_id}").json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def test_planted_secrets_never_leave_the_settings(settings, fake, hook, caplog):
    from tradetrail.services.notifications.sender import run_once

    configured = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                          notify_key=NOTIFY_KEY,
                          llm_api_key=LLM_KEY, llm_model="fake-vision", llm_timeout_s=2.0, llm_backoff_s=0.01,
                          ibkr_oauth_access_token_secret=IBKR_SECRET, ibkr_oauth_access_token=IBKR_TOKEN,
                          s3_secret_key=S3_SECRET)
    _assert_clean("the settings' repr", repr(configured) + str(configured.model_dump()))
    app = build_app(configured, migrate=False)
    demo(app)
    caplog.set_level(logging.DEBUG)
    alice = api_user(app, "demo", password=PASSWORD)
    responses: list[str] = []

    def keep(r):
        responses.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        return r

    # a notification channel whose URL holds secrets (a login and a token in the path), for every event
    channel = keep(alice.post("/api/notifications", json={
        "url": f"json://bot:{NOTIFY_PASSWORD}@127.0.0.1:{hook.port}/hooks/{NOTIFY_TOKEN}"}))
    assert channel.status_code == 201, channel.text
    # and channels whose host is the token, for an event this test never raises (nothing is sent out)
    for url in (f"pbul://{PUSHBULLET_TOKEN}", f"pover://{PUSHOVER_USER}@{PUSHOVER_TOKEN}", f"ntfys://{NTFY_TOPIC}"):
        added = keep(alice.post("/api/notifications", json={"url": url, "events": ["reconcile_mismatch"]}))
        assert added.status_code == 201, added.text
        assert added.json()["channel"].startswith(url.split("://")[0] + "://… #"), added.json()
    # one good analysis, then a model error that echoes the key back (as real providers do, partly)
    fake.enqueue(Behaviour.ok(BUY))
    good = _wait(alice, keep(alice.post("/api/strategies/demo/run")).json()["execution_id"])
    assert good["status"] == "succeeded", good["error"]
    assert fake.chat_requests[0].headers["authorization"] == f"Bearer {LLM_KEY}"  # the key was really used
    for _ in range(3):
        fake.enqueue(Behaviour.error(401, f"Incorrect API key provided: {LLM_KEY}. You can find your key at ..."))
    bad = _wait(alice, keep(alice.post("/api/strategies/demo/run")).json()["execution_id"])
    assert bad["status"] == "failed" and bad["failed_step"] == "analyze"
    assert "401" in bad["error"] or "Incorrect API key" in bad["error"]

    # the runs' notifications delivered through the channel (its secrets used, never shown), a test, a failure
    assert run_once(app)["delivered"] >= 3
    assert {r.path for r in hook.acknowledged()} == {f"/hooks/{NOTIFY_TOKEN}"}
    assert keep(alice.post(f"/api/notifications/{channel.json()['id']}/test")).json()["ok"] is True
    hook.fail_next(1)
    with app.engine.begin() as conn:
        from tradetrail.notify import outbox

        outbox.event_conn(conn, alice_id(app), "signal", "one more", "/")
    assert run_once(app)["retrying"] + run_once(app)["delivered"] >= 1
    keep(alice.get("/api/notifications"))
    keep(alice.post("/api/notifications", json={"url": f"nosuch://{NOTIFY_TOKEN}x@host/{NOTIFY_PASSWORD}x"}))

    # logins, right and wrong, with the password in the body
    login = keep(alice.client.post("/api/auth/login", json={"username": "demo", "password": PASSWORD}))
    assert login.status_code == 200
    keep(alice.client.post("/api/auth/login", json={"username": "demo", "password": PASSWORD + "x"}))
    keep(alice.client.post("/api/auth/login", json={"username": "demo", "password": PASSWORD * 100}))
    alice.client.cookies.clear()
    # every readable route, and a few malformed requests whose errors might echo input
    for url in ("/health", "/openapi.json", "/api/strategies", "/api/strategies/demo", "/api/lineage/recent",
                f"/api/lineage/execution/{good['id']}", f"/api/lineage/execution/{bad['id']}", "/api/lineage/stats",
                "/api/orders", "/api/portfolio", "/api/positions", "/api/portfolio/snapshots", "/api/prompts",
                "/api/auth/tokens", "/api/auth/me", "/api/broker/status", "/api/trading-state"):
        keep(alice.get(url))
    keep(alice.post("/api/prompts/render", json={"body": "{{ symbol }}", "variables": {"api_key": LLM_KEY}}))
    keep(alice.post("/api/strategies", json={"name": "leak", "config": {"symbol": LLM_KEY}}))
    keep(alice.post("/api/strategies", json={"name": "leak", "config": {"symbol": "SPX", "x": PASSWORD}}))
    for step in bad["steps"] + good["steps"]:
        keep(alice.get(f"/api/lineage/execution/{bad['id']}/steps/{step['number']}"))
        for digest in step["artifacts"].values():
            keep(alice.get(f"/api/artifacts/{digest}"))
    _assert_clean("an API response", "\n".join(responses))

    _assert_clean("a log record", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))

    dump = []
    with app.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            dump.extend(str(row) for row in conn.execute(select(table)))
        assert conn.execute(text("SELECT COUNT(*) FROM lineage_steps")).scalar() >= 20
    _assert_clean("a database row", "\n".join(dump))

    stored = b"".join(p.read_bytes() for p in configured.resolved_artifacts_dir.rglob("*") if p.is_file())
    assert stored  # the prompts, answers and charts were stored
    _assert_clean("a stored artifact", stored.decode("latin-1"))


def alice_id(app) -> int:
    from tradetrail.db.models import User

    with app.Session() as s:
        return s.scalar(select(User.id).where(User.username == "demo"))
