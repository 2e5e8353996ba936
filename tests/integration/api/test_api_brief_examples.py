"""The brief's five example requests (seed/CURRENT_STATUS_SUMMARY.md), as written plus a token, against
`tradetrail serve` on a real port with IBKR market data from the fake gateway."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.ibkr import SCALE, SEARCH

pytestmark = pytest.mark.once  # the brief's examples through the API: the same on either backend

BIN = Path(sys.executable).with_name("tradetrail")


@pytest.fixture
def gw():
    with FakeGateway(pacing_scale=SCALE) as gateway:
        yield gateway


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_five_examples_of_the_brief(cli_env, gw):
    env = {**cli_env, "TRADETRAIL_BROKER": "ibkr_web", "TRADETRAIL_MARKET_DATA": "ibkr",
           "TRADETRAIL_IBKR_URL": gw.url, "TRADETRAIL_IBKR_PACING_SCALE": str(SCALE),
           "TRADETRAIL_IBKR_ALLOWED_QUESTIONS": "o163", "TRADETRAIL_SCHEDULER_ENABLED": "false"}
    tt = lambda *a: subprocess.run([str(BIN), *a], env=env, capture_output=True, text=True, timeout=180)  # noqa: E731
    assert tt("init").returncode == 0
    run = tt("run", "demo", "--json")
    assert run.returncode == 0, run.stderr
    execution_id = json.loads(run.stdout)["id"]
    token = tt("tokens", "create", "demo").stdout.strip()
    port = _free_port()
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://localhost:{port}"

    def get(path: str, auth: bool = True):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if auth else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # answering (degraded is still an answer)
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.2)

        # 1. Symbol search
        status, found = get("/api/symbols/search?query=AAPL")
        assert status == 200
        assert [(r["symbol"], r["conid"], r["exchange"]) for r in found][0] == ("AAPL", 265598, "NASDAQ")
        searches = gw.count(SEARCH)
        assert get("/api/symbols/search?query=AAPL")[1][0]["cache"] == "hit" and gw.count(SEARCH) == searches
        # 2. Symbol details
        status, details = get("/api/symbols/conid/265598")
        assert status == 200 and (details["symbol"], details["name"], details["currency"]) == \
            ("AAPL", "APPLE INC", "USD")
        # 3. Cache statistics
        status, stats = get("/api/symbols/cache/stats")
        assert status == 200 and stats["total"] >= 2 and stats["by_asset_type"].get("STK", 0) >= 2
        assert {e["exchange"] for e in stats["top_exchanges"]} >= {"NASDAQ"}
        # 4. Recent execution lineage
        status, recent = get("/api/lineage/recent")
        assert status == 200 and recent["items"][0]["id"] == execution_id
        assert recent["items"][0]["status"] == "succeeded"
        # 5. Execution details
        status, one = get(f"/api/lineage/execution/{execution_id}")
        assert status == 200 and one["id"] == execution_id and one["has_errors"] is False
        assert [s["number"] for s in one["steps"]] == list(range(1, len(one["steps"]) + 1))
        assert one["steps"][2]["name"] == "resolve_contract"
        # as written, without a token: refused, with the reason
        status, body = get("/api/symbols/search?query=AAPL", auth=False)
        assert status == 401 and "Bearer" in body["error"]["message"]
    finally:
        server.terminate()
        server.wait(timeout=30)
