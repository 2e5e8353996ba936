"""Crash recovery on the real command: ``tradetrail run demo`` is killed (SIGKILL) at each point of the order
path, then ``tradetrail reconcile`` must leave exactly one broker order per intent, none lost, none unknown
to us, and the next runs must not send a second entry while the first one is working.

The demo's first run (replay session 2005-01-03) places a bracket BUY: entry MKT, stop STP, target LMT.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tradetrail.catalogue import replay_clock as replay
from tradetrail.db.models import Execution, Strategy
from tradetrail.db.sim_models import SimOrder, SimPosition, SimQuestion
from tradetrail.db.trading_models import Order, OrderEvent, Position, Reconciliation
from tradetrail.drills import POINTS

BIN = Path(sys.executable).with_name("tradetrail")
LEGS = ["entry", "stop", "target"]


def tt(env: dict, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN), *args], env={**env, **extra}, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"tradetrail {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def crash(env: dict, point: str) -> None:
    proc = tt(env, "run", "demo", "--json", check=False, TRADETRAIL_CRASH_AT=point)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout == ""  # died mid-run: nothing printed


def reconcile(env: dict, **extra: str) -> dict:
    return json.loads(tt(env, "reconcile", "--json", **extra).stdout)


def run_demo(env: dict) -> dict:
    return json.loads(tt(env, "run", "demo", "--json").stdout)


def step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def local_orders(app) -> list[Order]:
    with app.Session() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def sim_orders(app) -> dict[str, SimOrder]:
    with app.Session() as s:
        return {r.client_order_id: r for r in s.scalars(select(SimOrder).order_by(SimOrder.id))}


def trail(app, order_id: int) -> list[tuple[str | None, str, str]]:
    with app.Session() as s:
        rows = s.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
        return [(e.from_state, e.to_state, e.detail) for e in rows]


def assert_books_agree(app) -> list[Order]:
    """One broker order per local intent (none lost), no broker order we do not know, same states, and a
    single entry at the broker (a second entry under another client order id would be a duplicate too)."""
    local = local_orders(app)
    with app.Session() as s:
        per_coid = dict(s.execute(select(SimOrder.client_order_id, func.count(SimOrder.id))
                                  .group_by(SimOrder.client_order_id)).all())
        entries = s.scalar(select(func.count(SimOrder.id)).where(SimOrder.side == "BUY",
                                                                 SimOrder.parent_client_order_id.is_(None)))
        local_ext = s.scalar(select(func.count(Order.id)).where(Order.external.is_(True)))
    assert {o.client_order_id: per_coid.get(o.client_order_id, 0) for o in local} == \
        {o.client_order_id: 1 for o in local}
    assert set(per_coid) == {o.client_order_id for o in local}
    assert entries == 1 and local_ext == 0
    broker = sim_orders(app)
    for o in local:
        bo = broker[o.client_order_id]
        assert (o.state, o.broker_order_id, o.quantity, o.side, o.order_type) == \
            (bo.status, str(bo.id), bo.quantity, bo.side, bo.order_type), o.client_order_id
    return local


def demo_strategy_id(app) -> int:
    with app.Session() as s:
        return s.scalar(select(Strategy.id).where(Strategy.name == "demo"))


@pytest.mark.parametrize("point", POINTS)
def test_crash_then_reconcile_leaves_exactly_one_broker_order_per_intent(point, app, cli_env):
    assert "strategy demo" in tt(cli_env, "init").stdout
    crash(cli_env, point)

    # What the crash left behind: the intent always; at the broker only if it was sent.
    after_crash = local_orders(app)
    assert [o.leg for o in after_crash] == LEGS
    assert {o.state for o in after_crash} == ({"NEW"} if point == "after_intent_saved" else {"SUBMITTING"})
    assert all(o.broker_order_id is None for o in after_crash)
    coids = [o.client_order_id for o in after_crash]
    booked = sim_orders(app)
    assert sorted(booked) == ([] if point == "after_intent_saved" else sorted(coids))
    with app.Session() as s:
        assert s.scalar(select(Execution.status)) == "running"  # the process died inside the run

    first = reconcile(cli_env)
    assert (first["adopted"], first["fills"], first["position_mismatches"]) == ([], [], [])
    if point == "after_intent_saved":
        assert first["resent"] == [coids[0]]  # the bracket, keyed by its parent, sent once
        assert first["notes"] == [f"{coids[0]}: the broker never had it; sent again: accepted"]
    else:
        assert first["resent"] == []
        assert first["notes"] == [f"{c}: found at the broker, now SUBMITTED" for c in coids]
    second = reconcile(cli_env)  # idempotent: nothing left to settle, nothing sent
    assert {k: second[k] for k in ("adopted", "fills", "resent", "notes", "position_mismatches")} == \
        {"adopted": [], "fills": [], "resent": [], "notes": [], "position_mismatches": []}
    with app.Session() as s:
        assert s.scalars(select(Reconciliation.ok).where(Reconciliation.account == after_crash[0].account)
                         .order_by(Reconciliation.id)).all() == [True, True]  # one per call for the demo's account

    local = assert_books_agree(app)
    assert [(o.leg, o.state) for o in local] == [(leg, "SUBMITTED") for leg in LEGS]
    assert [o.client_order_id for o in local] == coids
    for o in local:
        events = trail(app, o.id)
        if point == "after_intent_saved":  # sent by the reconciliation, which says so in the trail
            assert [(a, b) for a, b, _ in events] == [(None, "NEW"), ("NEW", "NEW"), ("NEW", "SUBMITTING"),
                                                      ("SUBMITTING", "SUBMITTED")]
            assert events[1][2].startswith("reconciliation: the broker has no order with this id")
            assert events[-1][2] == f"accepted as broker order {o.broker_order_id}"
        else:  # found by the reconciliation
            assert [(a, b) for a, b, _ in events] == [(None, "NEW"), ("NEW", "SUBMITTING"),
                                                      ("SUBMITTING", "SUBMITTED")]
            assert events[-1][2] == "the broker has it"

    # The same session again (a re-run): the entry is working, so the gate refuses a second one.
    with app.Session() as s:
        replay.reset(s, demo_strategy_id(app))
    again = run_demo(cli_env)
    assert again["as_of"] == "2005-01-03T21:00:00+00:00" and again["status"] == "succeeded"
    risk = step(again, "risk_check")["output"]
    assert risk["action"] == "enter" and risk["approved"] is False and risk["quantity"] == 0
    assert [(d["rule"], d["numbers"]) for d in risk["denials"]] == [
        ("orders_pending", {"pending_orders": 1, "open_protection": 2})]
    assert step(again, "place_order")["status"] == "skipped"
    assert [o.client_order_id for o in assert_books_agree(app)] == coids

    # Next session: the entry fills at the open; the SELL signal cancels the protection and exits once.
    nxt = run_demo(cli_env)
    assert nxt["as_of"] == "2005-01-04T21:00:00+00:00" and nxt["status"] == "succeeded"
    assert step(nxt, "risk_check")["output"]["action"] == "exit"
    placed = step(nxt, "place_order")["output"]
    assert placed["status"] == "accepted"
    assert [(leg["client_order_id"], leg["state"]) for leg in placed["cancelled_protection"]] == \
        [(c, "CANCELLED") for c in coids[1:]]
    local = assert_books_agree(app)
    assert [(o.leg, o.state) for o in local] == [("entry", "FILLED"), ("stop", "CANCELLED"),
                                                 ("target", "CANCELLED"), ("exit", "SUBMITTED")]
    assert local[0].filled_quantity == local[0].quantity > 0
    with app.Session() as s:
        ours = s.scalar(select(Position.quantity).where(Position.symbol == "SPX"))
        theirs = s.scalar(select(SimPosition.quantity).where(SimPosition.symbol == "SPX"))
        assert s.scalar(select(func.count()).select_from(SimQuestion)) == 0
    assert ours == theirs == local[0].quantity


def test_old_intent_after_crash_is_cancelled_with_the_reason_and_never_sent(app, cli_env):
    tt(cli_env, "init")
    crash(cli_env, "after_intent_saved")
    coids = [o.client_order_id for o in local_orders(app)]
    assert len(coids) == 3

    report = reconcile(cli_env, TRADETRAIL_ORDER_RESUBMIT_WINDOW_S="0")
    assert report["resent"] == [] and report["adopted"] == []
    assert report["notes"] == [f"{coids[0]}: never reached the broker; cancelled as too old to send"]
    reason = "never reached the broker and is too old to send now"
    local = local_orders(app)
    assert [(o.leg, o.state, o.reason, o.broker_order_id) for o in local] == \
        [(leg, "CANCELLED", reason, None) for leg in LEGS]
    for o in local:
        assert [(a, b, d) for a, b, d in trail(app, o.id)][1:] == [("NEW", "CANCELLED", reason)]
    assert sim_orders(app) == {}

    # Cancelled is final: a reconciliation with the normal window does not bring it back.
    report = reconcile(cli_env)
    assert (report["resent"], report["notes"]) == ([], [])
    assert sim_orders(app) == {} and {o.state for o in local_orders(app)} == {"CANCELLED"}

    # The cancelled intent does not block the strategy: re-running the session places one fresh bracket.
    with app.Session() as s:
        replay.reset(s, demo_strategy_id(app))
    again = run_demo(cli_env)
    assert step(again, "place_order")["output"]["status"] == "accepted"
    broker = sim_orders(app)
    assert len(broker) == 3 and not set(broker) & set(coids)
    assert {o.client_order_id: o.state for o in local_orders(app) if o.client_order_id in broker} == \
        {c: "SUBMITTED" for c in broker}


def test_resend_by_reconciliation_is_visible_in_the_order_trail(app, cli_env):
    tt(cli_env, "init")
    crash(cli_env, "after_intent_saved")
    assert reconcile(cli_env)["resent"]
    for o in local_orders(app):
        assert o.state == "SUBMITTED"
        details = [d for _, _, d in trail(app, o.id)]
        assert any("broker" in d and ("again" in d or "reconcil" in d) for d in details), details
