"""Crash recovery through ibkr_tws on the real command: ``tradetrail run demo`` is killed (SIGKILL) after TWS
booked its bracket but before the answer reached it, or right after the intent was saved; ``tradetrail
reconcile`` in a new process (the same clientId again) must then leave exactly one bracket at TWS, and our
books must name it."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.integration.tws.tws_harness import (  # noqa: F401
    BIN,
    local_orders,
    tt,
    tws_env,
    tws_fixture,
    until,
)


def _one_bracket_and_books_agree(tws, app) -> None:
    legs = local_orders(app)
    assert [o.order_ref for o in tws.orders] == [o.client_order_id for o in legs]
    assert tws.count("placeOrder") == 3
    assert [o.broker_order_id for o in legs] == [str(o.perm_id) for o in tws.orders]
    assert [tws.orders[i].parent_id for i in (1, 2)] == [tws.orders[0].order_id] * 2


@pytest.mark.slow
def test_killed_between_the_placement_and_its_answer_then_reconciled_once(app, cli_env, tws):
    env = tws_env(cli_env, tws)
    assert tt(env, "init").returncode == 0
    tws.hold_next_order()  # TWS books the bracket and answers nothing
    proc = subprocess.Popen([str(BIN), "run", "demo", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: len(tws.orders) == 3 or proc.poll() is not None, timeout=120, what="the bracket at TWS")
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert out == ""
    legs = local_orders(app)
    assert [o.state for o in legs] == ["SUBMITTING"] * 3 and all(o.broker_order_id is None for o in legs)
    assert len(tws.orders) == 3  # booked at TWS; we never heard

    first = tt(env, "reconcile", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert (report["resent"], report["adopted"], report["position_mismatches"]) == ([], [], [])
    assert sorted(n.split(":")[0] for n in report["notes"] if "found at the broker" in n) == \
        sorted(o.client_order_id for o in legs)
    assert [o.state for o in local_orders(app)] == ["SUBMITTED"] * 3
    _one_bracket_and_books_agree(tws, app)

    tws.release_held()  # TWS gets round to it: the entry fills while nobody is connected
    until(lambda: tws.positions.get("SPY"), what="the entry filling at the fake")
    second = json.loads(tt(env, "reconcile", "--json").stdout)
    assert (second["resent"], second["adopted"], second["position_mismatches"]) == ([], [], [])
    assert [f["client_order_id"] for f in second["fills"]] == [legs[0].client_order_id]
    assert [(o.leg, o.state) for o in local_orders(app)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    _one_bracket_and_books_agree(tws, app)
    assert tws.seen_client_ids == [1, 1, 1, 1]  # init, run, reconcile, reconcile: the same clientId each time


@pytest.mark.slow
def test_killed_after_the_intent_was_saved_then_reconciliation_sends_it_once(app, cli_env, tws):
    env = tws_env(cli_env, tws)
    assert tt(env, "init").returncode == 0
    proc = tt({**env, "TRADETRAIL_CRASH_AT": "after_intent_saved"}, "run", "demo", "--json")
    assert proc.returncode == -signal.SIGKILL
    assert [o.state for o in local_orders(app)] == ["NEW"] * 3 and tws.orders == []
    report = json.loads(tt(env, "reconcile", "--json").stdout)
    assert report["resent"] == [local_orders(app)[0].client_order_id]  # TWS provably had none of it
    _one_bracket_and_books_agree(tws, app)
    assert [(o.leg, o.state) for o in local_orders(app)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    again = json.loads(tt(env, "reconcile", "--json").stdout)
    assert (again["resent"], again["notes"]) == ([], [])
    _one_bracket_and_books_agree(tws, app)
