"""Crash recovery against the fake gateway on the real command: ``tradetrail run demo`` is killed (SIGKILL)
after the gateway booked its bracket but before the answer reached it, or right after the intent was saved;
``tradetrail reconcile`` in a new process must then leave exactly one bracket at the gateway, and our books
must name it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.ibkr import BIN, SCALE, ibkr_env, local_orders, posted_tickets, tt
from tradetrail.db.ibkr_models import IbkrOrderLink


@pytest.fixture
def gw():
    with FakeGateway(pacing_scale=SCALE) as gateway:
        yield gateway


def kill_when_booked(gw: FakeGateway, proc: subprocess.Popen) -> None:
    """The gateway has booked the order and not yet answered: the client dies now."""
    def hook(_booked) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    gw.on_order_booked.append(hook)


def assert_one_bracket_and_books_agree(gw: FakeGateway, app) -> None:
    legs = local_orders(app)
    assert len(gw.orders) == 3 and len(posted_tickets(gw)) == 1
    assert [(o.leg, o.state) for o in legs] == [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    assert sorted(int(o.broker_order_id) for o in legs) == sorted(gw.orders)
    assert gw.orders[int(legs[0].broker_order_id)].coid == legs[0].client_order_id
    assert [gw.orders[int(o.broker_order_id)].parent for o in legs[1:]] == [int(legs[0].broker_order_id)] * 2


def test_killed_between_the_order_post_and_its_answer_then_reconciled_once(app, cli_env, gw):
    env = ibkr_env(cli_env, gw)
    assert tt(env, "init").returncode == 0
    proc = subprocess.Popen([str(BIN), "run", "demo", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kill_when_booked(gw, proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert out == ""
    legs = local_orders(app)
    assert [o.state for o in legs] == ["SUBMITTING"] * 3 and all(o.broker_order_id is None for o in legs)
    assert len(gw.orders) == 3  # booked at IBKR; we never heard

    first = tt(env, "reconcile", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert (report["resent"], report["adopted"], report["position_mismatches"]) == ([], [], [])
    assert sorted(n.split(":")[0] for n in report["notes"] if "found at the broker" in n) == \
        sorted(o.client_order_id for o in legs)
    assert_one_bracket_and_books_agree(gw, app)
    with app.Session() as s:  # the children, never echoed with our ids, were recognised and remembered
        links = {k.client_order_id: k.broker_order_id for k in s.scalars(select(IbkrOrderLink))}
    assert links == {o.client_order_id: o.broker_order_id for o in local_orders(app)}

    second = json.loads(tt(env, "reconcile", "--json").stdout)
    assert (second["resent"], second["adopted"], second["notes"]) == ([], [], [])
    assert_one_bracket_and_books_agree(gw, app)
    assert gw.violations == []


def test_killed_after_the_intent_was_saved_then_reconciliation_sends_it_once(app, cli_env, gw):
    env = ibkr_env(cli_env, gw)
    assert tt(env, "init").returncode == 0
    proc = tt({**env, "TRADETRAIL_CRASH_AT": "after_intent_saved"}, "run", "demo", "--json")
    assert proc.returncode == -signal.SIGKILL
    assert [o.state for o in local_orders(app)] == ["NEW"] * 3 and gw.orders == {}
    report = json.loads(tt(env, "reconcile", "--json").stdout)
    assert report["resent"] == [local_orders(app)[0].client_order_id]
    assert_one_bracket_and_books_agree(gw, app)
    again = json.loads(tt(env, "reconcile", "--json").stdout)
    assert (again["resent"], again["notes"]) == ([], [])
    assert len(posted_tickets(gw)) == 1 and gw.violations == []
