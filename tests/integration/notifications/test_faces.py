"""The channels' API and settings page: add, list, test and remove, the URL never shown back, another user's
channel not found, and a server without TRADETRAIL_NOTIFY_KEY refusing with the reason."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.api_client import api_user
from tests.support.helpers import demo
from tests.support.web_http import sign_in, web_client
from tradetrail.runtime.build import build_app

TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def keyed(settings):
    settings.notify_key = SecretStr(Fernet.generate_key().decode())
    app = build_app(settings, migrate=False)
    demo(app)
    return app


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def test_the_api_adds_lists_tests_and_removes_without_showing_the_url(keyed, hook):
    alice, bob = api_user(keyed, "demo"), api_user(keyed, "bob")
    added = alice.post("/api/notifications", json={"url": hook.url(TOKEN), "events": ["order_filled", "signal"]})
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["channel"] == "json://127.0.0.1:…" and body["events"] == ["signal", "order_filled"]
    listed = alice.get("/api/notifications")
    assert [c["id"] for c in listed.json()] == [body["id"]] and TOKEN not in listed.text
    assert bob.get("/api/notifications").json() == []
    assert bob.post(f"/api/notifications/{body['id']}/test").status_code == 404
    assert bob.delete(f"/api/notifications/{body['id']}").status_code == 404
    tested = alice.post(f"/api/notifications/{body['id']}/test").json()
    assert tested["ok"] is True and hook.acknowledged()[0].path == f"/{TOKEN}"
    hook.fail_next(1)
    failed = alice.post(f"/api/notifications/{body['id']}/test").json()
    assert failed["ok"] is False and "500" in failed["error"] and TOKEN not in failed["error"]
    bad = alice.post("/api/notifications", json={"url": hook.url(), "events": ["nope"]})
    assert bad.status_code == 422 and "unknown event kind" in bad.json()["error"]["message"]
    assert alice.delete(f"/api/notifications/{body['id']}").status_code == 200
    assert alice.get("/api/notifications").json() == []


def test_without_a_key_the_api_refuses_with_the_reason(settings, hook):
    app = build_app(settings, migrate=False)
    demo(app)
    refused = api_user(app, "demo").post("/api/notifications", json={"url": hook.url()})
    assert refused.status_code == 409
    assert "TRADETRAIL_NOTIFY_KEY" in refused.json()["error"]["message"]


def test_the_settings_page_adds_tests_and_removes_a_channel(keyed, hook):
    api_user(keyed, "demo")  # gives the demo user the test password
    client = web_client(keyed)
    csrf = sign_in(client)
    added = client.post("/settings/notifications", data={"url": hook.url(TOKEN), "events": "order_filled",
                                                         "csrf_token": csrf}, follow_redirects=False)
    assert added.status_code == 303
    page = client.get("/settings").text
    assert "json://127.0.0.1:…" in page and TOKEN not in page and "order_filled" in page
    channel_id = int(page.split('data-channel="')[1].split('"')[0])
    tested = client.post(f"/settings/notifications/{channel_id}/test", data={"csrf_token": csrf})
    assert 'data-ok="yes"' in tested.text and len(hook.acknowledged()) == 1
    refused = client.post("/settings/notifications", data={"url": "nosuch://x", "csrf_token": csrf})
    assert refused.status_code == 422 and "Apprise cannot use" in refused.text
    assert client.post(f"/settings/notifications/{channel_id}/remove", data={}).status_code == 403  # no CSRF
    removed = client.post(f"/settings/notifications/{channel_id}/remove", data={"csrf_token": csrf},
                          follow_redirects=False)
    assert removed.status_code == 303 and "No channel yet." in client.get("/settings").text
