"""Ambiguous placements, duplicate ids and confirmation questions, on the real order manager, the real
simulated broker (with its failure drills) and the real database: whatever happens, one client order id is
one broker order, and nothing is sent twice."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select, text, update

from tests.support.helpers import demo, demo_account
from tradetrail.broker.simulated import QUESTION_TEXT
from tradetrail.catalogue import replay_clock as replay
from tradetrail.db.models import ReplayClock
from tradetrail.db.sim_models import SimOrder, SimPosition, SimQuestion
from tradetrail.db.trading_models import Order, OrderEvent
from tradetrail.domain.orders import OrderType, Side, bracket
from tradetrail.runtime.build import build_app
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.settings import Settings
from tradetrail.trading.orders import save_intents, send
from tradetrail.trading.reconcile import reconcile

LEGS = ["entry", "stop", "target"]
BACKEND = os.environ.get("TRADETRAIL_TEST_DB", "sqlite")


def app_with(settings: Settings, **changes):
    """Another app on the same database and home, with a broker built from changed settings."""
    return build_app(Settings(home=settings.home, database_url=settings.database_url, **changes), migrate=False)


def local_orders(app) -> list[Order]:
    with app.Session() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def broker_counts(app) -> dict[str, int]:
    """How many broker orders carry each client order id."""
    with app.Session() as s:
        return dict(s.execute(select(SimOrder.client_order_id, func.count(SimOrder.id))
                              .group_by(SimOrder.client_order_id)).all())


def sim_by_coid(app) -> dict[str, SimOrder]:
    with app.Session() as s:
        return {r.client_order_id: r for r in s.scalars(select(SimOrder))}


def pending_questions(app) -> int:
    with app.Session() as s:
        return s.scalar(select(func.count()).select_from(SimQuestion))


def last_event(app, order_id: int) -> OrderEvent:
    with app.Session() as s:
        return s.scalar(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id.desc())
                        .limit(1))


def details(app, order_id: int) -> list[str]:
    with app.Session() as s:
        return list(s.scalars(select(OrderEvent.detail).where(OrderEvent.order_id == order_id)
                              .order_by(OrderEvent.id)))


def step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def run(app, user_id: int) -> dict:
    return get_execution(app, run_strategy(app, user_id, "demo").execution_id)


def rerun_same_session(app, user_id: int, strategy_id: int) -> dict:
    with app.Session() as s:
        replay.reset(s, strategy_id)
    return run(app, user_id)


def rerun_session_after(app, user_id: int, strategy_id: int, as_of: str) -> dict:
    """Run the session that follows ``as_of`` (ISO) once more, as a second run on the same day would."""
    with app.Session() as s:
        s.execute(update(ReplayClock).where(ReplayClock.strategy_id == strategy_id)
                  .values(as_of=datetime.fromisoformat(as_of)))
        s.commit()
    return run(app, user_id)


def assert_one_broker_order_each(app, orders: list[Order]) -> None:
    counts = broker_counts(app)
    assert {o.client_order_id: counts.get(o.client_order_id, 0) for o in orders} == \
        {o.client_order_id: 1 for o in orders}
    assert set(counts) == {o.client_order_id for o in orders}


def specs_for(key: str):
    return bracket(key, Side.BUY, 10, entry_type=OrderType.MKT, entry_price=100.0, stop_price=95.0,
                   target_price=110.0)


# -- timeouts ---------------------------------------------------------------------------------------------

def test_timeout_after_the_broker_booked_it_is_unknown_and_never_placed_twice(app, settings):
    user_id, strategy = demo(app)
    account = demo_account(app, user_id, strategy)  # a replay-clock strategy's own
    broken = app_with(settings, sim_faults="place_timeout_after_accept")
    execution = run(broken, user_id)
    assert execution["status"] == "failed" and execution["failed_step"] == "place_order"
    assert execution["error"].startswith("order ambiguous: SimulatedTimeout")
    out = step(execution, "place_order")["output"]
    assert out["status"] == "ambiguous" and set(out["orders"].values()) == {"UNKNOWN"}
    orders = local_orders(app)
    assert [(o.leg, o.state, o.broker_order_id) for o in orders] == [(leg, "UNKNOWN", None) for leg in LEGS]
    assert all("simulated timeout after the order was booked" in o.reason for o in orders)
    for o in orders:
        ev = last_event(app, o.id)
        assert (ev.from_state, ev.to_state) == ("SUBMITTING", "UNKNOWN")
        assert ev.detail.startswith("ambiguous outcome, reconcile before anything is resent")
    assert_one_broker_order_each(app, orders)  # booked once, and not retried after the timeout

    report = reconcile(broken, user_id, account)  # any send would book and time out again: nothing may be sent
    assert report["resent"] == [] and report["adopted"] == []
    assert report["notes"] == [f"{o.client_order_id}: found at the broker, now SUBMITTED" for o in orders]
    sim = sim_by_coid(app)
    after = local_orders(app)
    assert [(o.state, o.broker_order_id) for o in after] == \
        [("SUBMITTED", str(sim[o.client_order_id].id)) for o in after]
    assert_one_broker_order_each(app, after)
    assert reconcile(broken, user_id, account)["notes"] == []


def test_no_second_entry_while_the_first_is_of_unknown_fate(app, settings):
    user_id, strategy = demo(app)
    broken = app_with(settings, sim_faults="place_timeout_after_accept")
    assert run(broken, user_id)["failed_step"] == "place_order"
    coids = [o.client_order_id for o in local_orders(app)]

    again = rerun_same_session(broken, user_id, strategy.id)  # same session, same BUY signal
    assert step(again, "decide_signal")["output"]["action"] == "BUY"
    risk = step(again, "risk_check")["output"]
    assert risk["approved"] is False
    assert [d["rule"] for d in risk["denials"]] == ["orders_pending"]
    assert step(again, "place_order")["status"] == "skipped"
    orders = local_orders(app)
    assert [o.client_order_id for o in orders] == coids  # no new intent
    assert_one_broker_order_each(app, orders)  # and nothing new at the broker
    # risk_check's sync found the bracket at the broker: no longer unknown, still working.
    assert [o.state for o in orders] == ["SUBMITTED"] * 3


def test_timeout_before_the_broker_booked_it_is_resent_once_by_reconciliation(app, settings):
    user_id, strategy = demo(app)
    broken = app_with(settings, sim_faults="place_timeout_before_accept")
    execution = run(broken, user_id)
    assert execution["failed_step"] == "place_order" and "ambiguous" in execution["error"]
    orders = local_orders(app)
    assert [o.state for o in orders] == ["UNKNOWN"] * 3
    assert all("simulated timeout before the order reached the book" in o.reason for o in orders)
    assert broker_counts(app) == {}

    # Unknown fate blocks a new entry even though the broker has nothing (we cannot know that yet).
    again = rerun_same_session(broken, user_id, strategy.id)
    risk = step(again, "risk_check")["output"]
    assert risk["approved"] is False and [d["rule"] for d in risk["denials"]] == ["orders_pending"]
    assert risk["denials"][0]["numbers"] == {"pending_orders": 1, "open_protection": 2}  # all legs still UNKNOWN
    assert [o.state for o in local_orders(app)] == ["UNKNOWN"] * 3 and broker_counts(app) == {}

    fresh = app_with(settings)
    account = demo_account(app, user_id, strategy)  # a replay-clock strategy's own
    report = reconcile(fresh, user_id, account)
    coids = [o.client_order_id for o in orders]
    assert report["resent"] == [coids[0]]
    assert report["notes"] == [f"{coids[0]}: the broker never had it; sent again: accepted"]
    after = local_orders(app)
    assert [o.state for o in after] == ["SUBMITTED"] * 3
    assert_one_broker_order_each(app, after)
    for o in after:
        assert "reconciliation: the broker has no order with this id, safe to send again" in details(app, o.id)

    second = reconcile(fresh, user_id, account)
    assert (second["resent"], second["notes"]) == ([], [])
    assert_one_broker_order_each(app, local_orders(app))


def test_already_registered_is_ambiguous_then_reconciled_never_a_rejection(app):
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    contract = app.market_data("sample").resolve("SPX")
    specs = specs_for("already-registered")
    # The broker already has these ids (e.g. an earlier attempt that was booked but never answered).
    assert app.broker.place(account, contract, specs).status == "accepted"
    orders = save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None, account=account,
                          contract=contract, specs=specs)
    outcome = send(app, orders)
    assert outcome.status == "ambiguous"
    assert "is already registered" in outcome.reason
    assert outcome.states == {s.client_order_id: "UNKNOWN" for s in specs}
    local = local_orders(app)
    assert all("already registered" in o.reason for o in local)
    with app.Session() as s:
        assert "REJECTED" not in set(s.scalars(select(OrderEvent.to_state)))
    assert_one_broker_order_each(app, local)

    report = reconcile(app, user_id)
    assert report["resent"] == [] and report["adopted"] == []
    sim = sim_by_coid(app)
    assert [(o.state, o.broker_order_id) for o in local_orders(app)] == \
        [("SUBMITTED", str(sim[s.client_order_id].id)) for s in specs]
    assert_one_broker_order_each(app, local_orders(app))


def test_no_second_exit_while_the_first_is_of_unknown_fate(app, settings):
    user_id, strategy = demo(app)
    first = run(app, user_id)  # 2005-01-03: the bracket
    assert step(first, "place_order")["output"]["status"] == "accepted"
    broken = app_with(settings, sim_faults="place_timeout_after_accept")
    exiting = run(broken, user_id)  # 2005-01-04: the entry fills, SELL: the exit is booked, the answer lost
    assert step(exiting, "risk_check")["output"]["action"] == "exit"
    assert exiting["failed_step"] == "place_order" and "ambiguous" in exiting["error"]
    assert [o.state for o in local_orders(app) if o.leg == "exit"] == ["UNKNOWN"]

    again = rerun_session_after(app, user_id, strategy.id, first["as_of"])  # 2005-01-04 once more
    assert again["as_of"] == exiting["as_of"]
    with app.Session() as s:
        sells = s.scalar(select(func.coalesce(func.sum(SimOrder.quantity), 0)).where(
            SimOrder.side == "SELL", SimOrder.parent_client_order_id.is_(None)))
        held = s.scalar(select(SimPosition.quantity).where(SimPosition.symbol == "SPX"))
    assert sells <= held, f"{sells:g} to sell at the broker for a position of {held:g}"
    assert step(again, "risk_check")["output"]["approved"] is False
    run(app, user_id)  # 2005-01-05: whatever is working fills
    with app.Session() as s:
        assert s.scalar(select(SimPosition.quantity).where(SimPosition.symbol == "SPX")) == 0  # never short


def test_children_missing_at_the_broker_are_not_left_new_and_reported_as_resent(app):
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    contract = app.market_data("sample").resolve("SPX")
    specs = specs_for("partial")
    assert app.broker.place(account, contract, specs[:1]).status == "accepted"  # the broker took the parent only
    orders = save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None, account=account,
                          contract=contract, specs=specs)
    assert send(app, orders).status == "ambiguous"  # "already registered" for the parent
    report = reconcile(app, user_id)
    local = local_orders(app)
    assert local[0].state == "SUBMITTED"
    assert broker_counts(app) == {specs[0].client_order_id: 1} or \
        broker_counts(app) == {s.client_order_id: 1 for s in specs}
    assert not any("skipped" in n for n in report["notes"]), report["notes"]
    assert [o.state for o in local[1:]] != ["NEW", "NEW"], "children left NEW: never sent, never settled"


# -- confirmation questions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("asked, allowed, answers", [
    ("o163", "", [("o163", "no")]),
    ("o163,o354", "o163", [("o163", "yes"), ("o354", "no")]),
])
def test_question_not_on_the_allow_list_declines_and_books_nothing(app, settings, asked, allowed, answers):
    user_id, _ = demo(app)
    asking = app_with(settings, sim_questions=asked, ibkr_allowed_questions=allowed)
    execution = run(asking, user_id)
    assert execution["failed_step"] == "place_order" and execution["error"].startswith("order declined")
    out = step(execution, "place_order")["output"]
    assert out["status"] == "declined"
    assert [(q["message_ids"], q["answered"], q["text"]) for q in out["questions"]] == \
        [([m], a, QUESTION_TEXT[m]) for m, a in answers]
    refused = answers[-1][0]
    orders = local_orders(app)
    assert [(o.leg, o.state) for o in orders] == [(leg, "CANCELLED") for leg in LEGS]
    for o in orders:
        assert o.reason == f"confirmation {refused} is not on the allow-list: {QUESTION_TEXT[refused]}"
        assert (last_event(app, o.id).from_state, last_event(app, o.id).to_state) == ("SUBMITTING", "CANCELLED")
    assert broker_counts(app) == {} and pending_questions(app) == 0
    assert reconcile(asking, user_id)["resent"] == []  # declined is final
    assert broker_counts(app) == {}


def test_allowed_question_is_answered_and_the_bracket_booked_once(app, settings):
    user_id, _ = demo(app)
    asking = app_with(settings, sim_questions="o163", ibkr_allowed_questions="o354, o163")
    execution = run(asking, user_id)
    assert execution["status"] == "succeeded"
    out = step(execution, "place_order")["output"]
    assert out["status"] == "accepted"
    assert [(q["message_ids"], q["answered"]) for q in out["questions"]] == [(["o163"], "yes")]
    orders = local_orders(app)
    assert [o.state for o in orders] == ["SUBMITTED"] * 3
    assert_one_broker_order_each(app, orders)
    assert pending_questions(app) == 0


def test_reply_to_an_unknown_or_foreign_reply_id_is_rejected(app, settings):
    user_id, _ = demo(app)
    asking = app_with(settings, sim_questions="o163")
    account = asking.broker.account(user_id)
    result = asking.broker.reply(account, "no-such-reply", True)
    assert (result.status, result.reason) == ("rejected", "reply id not found: 'no-such-reply'")

    specs = specs_for("reply")
    asked = asking.broker.place(account, asking.market_data("sample").resolve("SPX"), specs)
    assert asked.status == "needs_confirmation" and broker_counts(app) == {}
    reply_id = asked.questions[0].reply_id
    assert asked.questions[0].message_ids == ("o163",)
    foreign = asking.broker.reply("SIM999999", reply_id, True)  # another account cannot answer it
    assert (foreign.status, foreign.reason) == ("rejected", f"reply id not found: '{reply_id}'")
    assert broker_counts(app) == {}
    accepted = asking.broker.reply(account, reply_id, True)
    assert accepted.status == "accepted" and set(accepted.broker_order_ids) == {s.client_order_id for s in specs}
    again = asking.broker.reply(account, reply_id, True)  # a reply id is good for one answer
    assert (again.status, again.reason) == ("rejected", f"reply id not found: '{reply_id}'")
    assert broker_counts(app) == {s.client_order_id: 1 for s in specs}


# -- reconciliation racing a submission -----------------------------------------------------------------------

def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _insert_waits_on_lock(app) -> bool:
    with app.engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND query ILIKE 'INSERT INTO sim_orders%'")))


@pytest.mark.skipif(BACKEND != "postgresql", reason="holding a submission in flight needs a table lock that lets "
                                                    "others write elsewhere (SQLite locks the whole file)")
@pytest.mark.parametrize("window_s", [900.0, 0.0], ids=["fresh", "old"])
def test_reconcile_leaves_a_submission_in_flight_alone(app, settings, window_s):
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    contract = app.market_data("sample").resolve("SPX")
    orders = save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None, account=account,
                          contract=contract, specs=specs_for(f"in-flight-{window_s}"))
    reconciler = app_with(settings, order_resubmit_window_s=window_s)
    sent, reported = {}, {}

    def sender() -> None:
        try:
            sent["outcome"] = send(app, orders)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            sent["error"] = exc

    def reconciling() -> None:
        try:
            reported["report"] = reconcile(reconciler, user_id)
        except Exception as exc:  # noqa: BLE001
            reported["error"] = exc

    def states() -> set[str]:
        return {o.state for o in local_orders(app)}

    with app.engine.connect() as slow_broker:
        slow_broker.execute(text("LOCK TABLE sim_orders IN SHARE MODE"))  # the broker takes its time to book
        t_send = threading.Thread(target=sender)
        t_send.start()
        assert _wait(lambda: states() == {"SUBMITTING"} and _insert_waits_on_lock(app), 20)
        t_rec = threading.Thread(target=reconciling)
        t_rec.start()
        _wait(lambda: not t_rec.is_alive() or states() != {"SUBMITTING"}, 5)
        slow_broker.rollback()  # the broker books the orders and answers the first send
    t_send.join(30)
    t_rec.join(30)
    assert not t_send.is_alive() and not t_rec.is_alive()
    assert "error" not in sent, repr(sent.get("error"))
    assert "error" not in reported, repr(reported.get("error"))
    assert sent["outcome"].status == "accepted"
    assert reported["report"]["resent"] == []
    local = local_orders(app)
    assert [o.state for o in local] == ["SUBMITTED"] * 3
    assert_one_broker_order_each(app, local)
