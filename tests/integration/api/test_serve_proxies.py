"""Forwarded headers are believed only from TRADETRAIL_TRUSTED_PROXIES (#11 item 8), against a real
``tradetrail serve``: from 127.0.0.1 (uvicorn's default trusted address), an X-Forwarded-For that changes
with every attempt must not dodge the per-address login limit unless 127.0.0.1 is a trusted proxy.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.support.celery_procs import BIN, Procs
from tests.support.helpers import wait_for
from tradetrail.db.account_models import LoginFailure
from tradetrail.services.accounts.users import MAX_FAILURES_PER_CLIENT, create_user
from tradetrail.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.once]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(procs: Procs, env: dict) -> int:
    port = _free_port()
    proc = procs.start({**env, "TRADETRAIL_SCHEDULER_ENABLED": "false", "TRADETRAIL_RECONCILE_INTERVAL_S": "0"},
                       "serve", "--port", str(port), log="serve.log")

    def up():
        assert proc.poll() is None, procs.log("serve.log")[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
    wait_for(up, 60, "tradetrail serve to answer")
    return port


def _login(port: int, username: str, forwarded_for: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/auth/login", method="POST",
        data=json.dumps({"username": username, "password": "wrong password!"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_per_address_limit(app, cli_env, procs):
    create_user(app, "alice", "correct horse battery")
    port = _serve(procs, cli_env)
    # Each attempt claims another address and names another user, so only the per-address limit can stop it.
    codes = [_login(port, f"user{i}", f"203.0.113.{i}") for i in range(MAX_FAILURES_PER_CLIENT + 1)]
    assert codes == [401] * MAX_FAILURES_PER_CLIENT + [429]
    with app.Session() as s:
        assert set(s.scalars(select(LoginFailure.client))) == {"127.0.0.1"}  # the peer, not what it claimed


def test_a_trusted_proxy_forwards_the_client_address_that_counts(app, cli_env, procs):
    create_user(app, "alice", "correct horse battery")
    port = _serve(procs, {**cli_env, "TRADETRAIL_TRUSTED_PROXIES": "127.0.0.1"})
    spread = [_login(port, f"user{i}", f"203.0.113.{i}") for i in range(MAX_FAILURES_PER_CLIENT + 1)]
    assert spread == [401] * (MAX_FAILURES_PER_CLIENT + 1)  # distinct clients behind the proxy
    one = [_login(port, f"other{i}", "198.51.100.7") for i in range(MAX_FAILURES_PER_CLIENT + 1)]
    assert one == [401] * MAX_FAILURES_PER_CLIENT + [429]  # one client behind the proxy, limited as one
    with app.Session() as s:
        clients = set(s.scalars(select(LoginFailure.client)))
    assert clients == {f"203.0.113.{i}" for i in range(MAX_FAILURES_PER_CLIENT + 1)} | {"198.51.100.7"}


@pytest.mark.parametrize("value", ["127.0.0.l", "10.0.0.0/33", "proxy.example"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused(value, tmp_path):
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(home=tmp_path, trusted_proxies=value)
    assert Settings(home=tmp_path, trusted_proxies=" 10.0.0.5, 10.1.0.0/16 ").trusted_proxy_list == \
        ["10.0.0.5", "10.1.0.0/16"]


def test_serve_names_a_bad_trusted_proxy_setting(cli_env):
    proc = subprocess.run([str(BIN), "serve", "--port", str(_free_port())],
                          env={**cli_env, "TRADETRAIL_TRUSTED_PROXIES": "127.0.0.l"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "TRADETRAIL_TRUSTED_PROXIES" in proc.stderr and "127.0.0.l" in proc.stderr
