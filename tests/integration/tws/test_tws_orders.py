"""Orders through ibkr_tws against the fake TWS: a refusal (201) with TWS's text, partial fills, a cancel with
TWS's confirmation, and a nextValidId rolled back by a gateway restart: order ids are used again at TWS, yet no
fill is ever booked to the wrong order (orders and fills are matched on orderRef and permId, never orderId)."""

from __future__ import annotations

from sqlalchemy import select

from tests.fakes.tws_server import REJECT_TEXT
from tests.integration.tws.tws_harness import (  # noqa: F401
    local_orders,
    make_app_fixture,
    steps,
    tws_fixture,
    until,
)
from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.db.trading_models import Fill, Order, Position
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.trading.orders import cancel, save_intents, send
from tradetrail.trading.reconcile import reconcile, sync_account


def _demo(app) -> tuple[int, dict]:
    user_id = init(app)["user_id"]
    return user_id, get_execution(app, run_strategy(app, user_id, "demo").execution_id)


def test_a_refused_bracket_is_rejected_with_tws_text_and_never_resent(settings, tws, make_app):
    app = make_app(settings, tws)
    tws.reject_next_order()
    user_id, run = _demo(app)
    assert (run["status"], run["failed_step"]) == ("failed", "place_order")
    assert steps(run)["place_order"]["output"]["status"] == "rejected"
    assert REJECT_TEXT in run["error"] and "201" in run["error"]
    assert [o.state for o in local_orders(app)] == ["REJECTED"] * 3
    assert REJECT_TEXT in local_orders(app)[0].reason
    assert {o.status for o in tws.orders} == {"Inactive"} and tws.positions == {}
    assert reconcile(app, user_id)["resent"] == [] and tws.count("placeOrder") == 3


def test_partial_fills_are_booked_one_by_one_until_the_order_is_filled(settings, tws, make_app):
    app = make_app(settings, tws)
    tws.partial_fills([10])
    user_id, run = _demo(app)
    assert run["status"] == "succeeded", run["error"]
    entry = local_orders(app)[0]
    assert (entry.state, entry.filled_quantity) == ("PARTIALLY_FILLED", 10) and entry.quantity > 10
    assert tws.positions["SPY"][0] == 10

    tws.fill(entry.client_order_id, price=tws.last_close("SPY") + 1)
    report = sync_account(app, user_id, tws.account)
    assert [(f["quantity"], f["price"]) for f in report["fills"]] == \
        [(entry.quantity - 10, tws.last_close("SPY") + 1)]
    entry = local_orders(app)[0]
    assert (entry.state, entry.filled_quantity) == ("FILLED", entry.quantity)
    with app.Session() as s:
        assert len(s.scalars(select(Fill)).all()) == 2
        assert s.scalar(select(Position.quantity).where(Position.symbol == "SPY")) == entry.quantity
    assert sorted(e.exec_id for e in tws.executions) == sorted(f.exec_id for f in _fills(app))


def _fills(app) -> list[Fill]:
    with app.Session() as s:
        return list(s.scalars(select(Fill)))


def test_a_cancel_is_confirmed_by_tws_and_a_filled_order_cannot_be_cancelled(settings, tws, make_app):
    app = make_app(settings, tws)
    user_id, run = _demo(app)
    assert run["status"] == "succeeded", run["error"]
    entry, stop, target = local_orders(app)
    assert cancel(app, stop.id) == "requested"
    assert tws.order_by_ref(stop.client_order_id).status == "Cancelled"  # confirmed before cancel() returned
    sync_account(app, user_id, tws.account)
    assert [o.state for o in local_orders(app)] == ["FILLED", "CANCELLED", "SUBMITTED"]
    assert app.broker.cancel(tws.account, entry.broker_order_id) is False  # filled: not open at TWS
    assert app.broker.cancel(tws.account, "not-a-perm-id") is False


def _order(app, user_id: int, coid: str, quantity: float, price: float) -> Order:
    with app.Session() as s:
        contract = resolve_symbol(s, app.market_data(), "AAPL").contract
    spec = OrderSpec(coid, Leg.ENTRY, Side.BUY, OrderType.LMT, quantity, limit_price=price, tif="GTC")
    [row] = save_intents(app, user_id=user_id, strategy_id=None, execution_id=None, account=tws_account(app),
                         contract=contract, specs=[spec])
    outcome = send(app, [row])
    assert outcome.status == "accepted", outcome.reason
    return row


def tws_account(app) -> str:
    return app.broker.account(1)


def test_a_rolled_back_next_valid_id_reuses_an_order_id_at_tws_but_no_fill_goes_to_the_wrong_order(settings, tws,
                                                                                                   make_app):
    warm = make_app(settings, tws)  # the caches filled first, so both processes below take the same path
    user_id = init(warm)["user_id"]
    with warm.Session() as s:
        resolve_symbol(s, warm.market_data(), "AAPL")
    warm.tws_connection().close()
    close = tws.last_close("AAPL")

    first = make_app(settings, tws)  # a fresh process: TWS hands out order ids from 1 (none used yet)
    old = _order(first, user_id, "tt-old-order-of-the-day", 5, round(close * 0.5, 2))  # far off: stays working
    assert cancel(first, old.id) == "requested"
    sync_account(first, user_id, tws.account)
    old_at_tws = tws.order_by_ref("tt-old-order-of-the-day")
    assert old_at_tws.status == "Cancelled"

    # The gateway restarts and hands out order ids from 1 again; the process starts afresh (it keeps no ids).
    tws.rollback_next_valid_id(1)
    first.tws_connection().close()
    second = make_app(settings, tws)
    new = _order(second, user_id, "tt-new-order-after-restart", 7, round(close * 1.01, 2))  # marketable: fills
    new_at_tws = tws.order_by_ref("tt-new-order-after-restart")
    assert tws.next_valid_ids[-3:] == [1, 1, 1]
    assert (new_at_tws.client_id, new_at_tws.order_id) == (old_at_tws.client_id, old_at_tws.order_id)  # reused
    assert new_at_tws.perm_id != old_at_tws.perm_id and new_at_tws.status == "Filled"

    report = sync_account(second, user_id, tws.account)
    assert [(f["client_order_id"], f["quantity"]) for f in report["fills"]] == [("tt-new-order-after-restart", 7)]
    with second.Session() as s:
        rows = {o.client_order_id: o for o in s.scalars(select(Order))}
        fills = s.scalars(select(Fill)).all()
    assert (rows["tt-old-order-of-the-day"].state, rows["tt-old-order-of-the-day"].filled_quantity) == ("CANCELLED", 0)
    assert (rows["tt-new-order-after-restart"].state, rows["tt-new-order-after-restart"].filled_quantity) == \
        ("FILLED", 7)
    assert [f.order_id for f in fills] == [new.id]
    assert rows["tt-new-order-after-restart"].broker_order_id == str(new_at_tws.perm_id)
    assert rows["tt-old-order-of-the-day"].broker_order_id == str(old_at_tws.perm_id)
    assert reconcile(second, user_id)["position_mismatches"] == []


def test_within_one_process_a_rolled_back_next_valid_id_never_reuses_an_id_it_used(settings, tws, make_app):
    app = make_app(settings, tws)
    user_id = init(app)["user_id"]
    close = tws.last_close("AAPL")
    first = _order(app, user_id, "tt-first-order", 5, round(close * 0.5, 2))
    assert cancel(app, first.id) == "requested"
    conn = app.tws_connection()
    tws.rollback_next_valid_id(1)
    tws.drop_connections()
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    assert tws.next_valid_ids[-1] == 1
    _order(app, user_id, "tt-second-order", 5, round(close * 0.5, 2))
    assert tws.order_by_ref("tt-second-order").order_id > tws.order_by_ref("tt-first-order").order_id
