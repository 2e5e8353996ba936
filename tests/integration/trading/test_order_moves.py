"""The order manager's Core writes change only what a move changes (what a sync wrote meanwhile stays)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select, text

from tests.support.helpers import demo, demo_account
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.trading_models import Order, OrderEvent
from tradetrail.domain.orders import InvalidTransition, OrderState, OrderType, Side, bracket
from tradetrail.trading.books import move_rows
from tradetrail.trading.orders import save_intents, send


def _legs(app):
    user_id, strategy = demo(app)
    contract = app.market_data("sample").resolve("SPX")
    specs = bracket("moves", Side.BUY, 2, entry_type=OrderType.LMT, entry_price=100.0, stop_price=95.0,
                    target_price=110.0)
    return save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None,
                        account=demo_account(app, user_id, strategy), contract=contract, specs=specs)


def _order(app, order_id: int):
    with app.engine.connect() as conn:
        return conn.execute(select(Order.__table__).where(Order.__table__.c.id == order_id)).one()


def test_a_move_keeps_what_another_writer_set_after_the_row_was_read(app) -> None:
    entry, stop, _ = _legs(app)
    with app.engine.begin() as other:  # a sync committed between our read (``entry``, ``stop``) and our write
        other.execute(text("UPDATE orders SET broker_order_id = 'B-meanwhile', reason = 'written meanwhile'"))
    with app.engine.begin() as conn:
        states = move_rows(conn, [(entry, OrderState.SUBMITTING, "sending", {}),
                                  (stop, OrderState.SUBMITTING, "sending", {"broker_order_id": "B-ours"})])
    assert states == {entry.id: "SUBMITTING", stop.id: "SUBMITTING"}
    after_entry, after_stop = _order(app, entry.id), _order(app, stop.id)
    assert (after_entry.state, after_entry.broker_order_id, after_entry.reason) == (
        "SUBMITTING", "B-meanwhile", "written meanwhile")
    assert (after_stop.state, after_stop.broker_order_id, after_stop.reason) == (
        "SUBMITTING", "B-ours", "written meanwhile")
    assert after_entry.updated_at >= entry.updated_at


def test_each_move_leaves_its_event_and_a_notice_only_for_what_a_trader_hears_of(app) -> None:
    entry, stop, target = _legs(app)
    with app.engine.begin() as conn:
        move_rows(conn, [(r, OrderState.SUBMITTING, "sending", {}) for r in (entry, stop, target)])
    entry, stop, target = (_order(app, r.id) for r in (entry, stop, target))
    with app.engine.begin() as conn:
        move_rows(conn, [(entry, OrderState.SUBMITTED, "accepted", {"broker_order_id": "7"}),
                         (stop, OrderState.SUBMITTED, "accepted", {"broker_order_id": "8"}),
                         (target, target.state, "late answer", {})])
    with app.Session() as s:
        events = s.execute(select(OrderEvent.order_id, OrderEvent.from_state, OrderEvent.to_state)
                           .order_by(OrderEvent.id)).all()
        notices = s.scalars(select(NotifyEvent.text).order_by(NotifyEvent.id)).all()
    assert events[-3:] == [(entry.id, "SUBMITTING", "SUBMITTED"), (stop.id, "SUBMITTING", "SUBMITTED"),
                           (target.id, "SUBMITTING", "SUBMITTING")]
    assert len(events) == 3 + 3 + 3  # intent saved, sending, the answers
    assert notices == [f"Order sent: BUY 2 SPX (entry, {entry.account}): accepted"]  # the bracket is sent as one
    assert _order(app, target.id).state == "SUBMITTING"


def test_a_forbidden_move_writes_nothing(app) -> None:
    entry, stop, _ = _legs(app)
    with pytest.raises(InvalidTransition), app.engine.begin() as conn:
        move_rows(conn, [(stop, OrderState.SUBMITTING, "sending", {}), (entry, OrderState.FILLED, "no", {})])
    with app.Session() as s:
        assert s.scalar(select(OrderEvent.id).where(OrderEvent.to_state != "NEW")) is None
    assert _order(app, stop.id).state == "NEW"
    with pytest.raises(ValueError, match="cannot change"), app.engine.begin() as conn:
        move_rows(conn, [(entry, OrderState.SUBMITTING, "sending", {"quantity": 5})])


def test_saving_no_legs_saves_nothing(app) -> None:
    user_id, strategy = demo(app)
    assert save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None, account="SIM1",
                        contract=app.market_data("sample").resolve("SPX"), specs=[]) == []


def test_a_state_a_sync_committed_while_the_answer_is_written_is_not_overwritten(app, backend) -> None:
    """SQLite ignores FOR UPDATE: between send_locked's read of the legs and its write of the broker's answer,
    another process's sync can commit (here: the entry filled). The answer must not put it back to SUBMITTED."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL locks the rows read FOR UPDATE: the sync waits instead (a hook here would deadlock)")
    entry, stop, target = _legs(app)
    other = create_engine(app.settings.database_url)
    armed = {"placed": False, "done": False}

    @event.listens_for(app.engine, "before_cursor_execute")
    def sync_commits_meanwhile(conn, cursor, statement, params, context, executemany) -> None:
        sql = statement.lstrip().upper()
        if sql.startswith("INSERT INTO SIM_ORDERS"):  # the broker took the bracket: the answer is next
            armed["placed"] = True
        elif armed["placed"] and not armed["done"] and sql.startswith("UPDATE ORDERS"):
            armed["done"] = True
            with other.begin() as c:
                c.execute(text("UPDATE orders SET state = 'FILLED', filled_quantity = quantity WHERE id = :id"),
                          {"id": entry.id})
    try:
        outcome = send(app, [entry, stop, target])
    finally:
        event.remove(app.engine, "before_cursor_execute", sync_commits_meanwhile)
        other.dispose()
    assert armed["done"]
    assert outcome.status == "accepted"
    assert outcome.states == {entry.client_order_id: "FILLED", stop.client_order_id: "SUBMITTED",
                              target.client_order_id: "SUBMITTED"}
    assert _order(app, entry.id).state == "FILLED"
    with app.Session() as s:
        last = s.execute(select(OrderEvent.from_state, OrderEvent.to_state, OrderEvent.detail)
                         .where(OrderEvent.order_id == entry.id).order_by(OrderEvent.id.desc())).first()
    assert (last.from_state, last.to_state) == ("FILLED", "FILLED") and last.detail.startswith("late broker answer")
