"""Our books against the broker's, on the real database, the real simulated broker and the real order manager.

Hypothesis drives random sequences of bracket entries, exits, hand cancels, reconciliations and waits over
consecutive real S&P 500 sessions; after every step our orders, fills, positions and trades must agree with what
the broker says happened. Two bugs it led to are pinned by the xfail tests at the end.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict

import pandas as pd
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, text

from tests.support.helpers import demo
from tradetrail.db.models import Base
from tradetrail.db.trading_models import Fill, Order, Position, Trade
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side, bracket, client_order_id
from tradetrail.marketdata.sample import SampleMarketData, load_sample_daily
from tradetrail.trading.orders import cancel, save_intents, send
from tradetrail.trading.reconcile import reconcile, sync_account

CONTRACT = SampleMarketData().resolve("SPX")
BARS = load_sample_daily("SPX")
SESSIONS = BARS.index
FIRST = int(SESSIONS.searchsorted(SESSIONS[SESSIONS.year >= 2005][0]))
LAST = int(SESSIONS.searchsorted(SESSIONS[SESSIONS.year <= 2017][-1]))

buy_st = st.fixed_dictionaries({
    "kind": st.just("buy"),
    "entry_type": st.sampled_from([OrderType.MKT, OrderType.LMT]),
    "entry_offset": st.floats(-0.015, 0.005),  # LMT price relative to the last close
    "stop_pct": st.floats(0.002, 0.04),
    "target_pct": st.floats(0.002, 0.06),
    "size": st.floats(0.01, 0.3),  # fraction of the cash to commit
    "gap": st.integers(1, 3),
})
exit_st = st.fixed_dictionaries({"kind": st.just("exit"), "gap": st.integers(1, 3)})
wait_st = st.fixed_dictionaries({"kind": st.just("wait"), "gap": st.one_of(st.integers(1, 3), st.integers(5, 25))})
# a trader cancelling one working order by hand (e.g. the stop), and a reconciliation (start-up, CLI)
cancel_st = st.fixed_dictionaries({"kind": st.just("cancel"), "pick": st.integers(0, 5), "gap": st.integers(1, 3)})
reconcile_st = st.fixed_dictionaries({"kind": st.just("reconcile"), "gap": st.integers(1, 3)})
plan_st = st.lists(st.one_of(buy_st, buy_st, exit_st, wait_st, cancel_st, reconcile_st), min_size=4, max_size=22)


def _empty_tables(app) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with app.engine.begin() as conn:
        if app.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def _note(message: str) -> None:
    """Say what happened in the falsifying example (also usable outside hypothesis, when debugging)."""
    if currently_in_test_context():
        note(message)


def _signed(side: str, qty: float) -> float:
    return qty if side == "BUY" else -qty


def _our_position(app, account: str, strategy_id: int) -> Position | None:
    with app.Session() as s:
        return s.scalar(select(Position).where(Position.account == account, Position.strategy_id == strategy_id,
                                               Position.symbol == CONTRACT.symbol))


def _buy(app, user_id, strategy_id, account, close: float, cash: float, step: dict) -> None:
    entry = round(close * (1 + step["entry_offset"]), 2) if step["entry_type"] == OrderType.LMT else close
    stop = round(entry * (1 - step["stop_pct"]), 2)
    target = round(entry * (1 + step["target_pct"]), 2)
    qty = max(1, math.floor(cash * step["size"] / close))
    specs = bracket(str(uuid.uuid4()), Side.BUY, qty, entry_type=step["entry_type"], entry_price=entry,
                    stop_price=stop, target_price=target)
    orders = save_intents(app, user_id=user_id, strategy_id=strategy_id, execution_id=None, account=account,
                          contract=CONTRACT, specs=specs, risk_per_unit=entry - stop)
    outcome = send(app, orders)
    _note(f"bracket {[(o.client_order_id, o.id) for o in orders]} qty {qty} entry {entry} stop {stop} target {target}")
    assert outcome.status == "accepted", outcome
    assert set(outcome.states.values()) == {"SUBMITTED"}


def _exit(app, user_id, strategy_id, account, qty: float) -> None:
    """Like the place_order step: cancel the working protective orders, confirm, then sell the position."""
    with app.Session() as s:
        working = s.scalars(select(Order).where(Order.account == account, Order.strategy_id == strategy_id,
                                                Order.leg.in_((Leg.STOP.value, Leg.TARGET.value)),
                                                Order.state == "SUBMITTED")).all()
    for order in working:
        assert cancel(app, order.id, user_id=user_id) == "requested"
    sync_account(app, user_id, account)
    with app.Session() as s:
        states = {o.client_order_id: o.state for o in s.scalars(select(Order).where(
            Order.id.in_([w.id for w in working])))}
    assert set(states.values()) <= {"CANCELLED"}, states
    spec = OrderSpec(client_order_id(str(uuid.uuid4()), Leg.EXIT), Leg.EXIT, Side.SELL, OrderType.MKT, qty, tif="DAY")
    orders = save_intents(app, user_id=user_id, strategy_id=strategy_id, execution_id=None, account=account,
                          contract=CONTRACT, specs=[spec])
    outcome = send(app, orders)
    _note(f"exit {[(o.client_order_id, o.id) for o in orders]} qty {qty}, cancelled {sorted(states)}")
    assert outcome.status == "accepted", outcome


def _check(app, account: str, strategy_id: int, initial: float, close: float, synced: dict) -> None:
    assert synced["adopted"] == [] and synced["notes"] == [], synced
    broker_orders = app.broker.orders(account)
    broker_fills = app.broker.fills(account)
    broker_pos = {p.symbol: p for p in app.broker.positions(account)}
    cash = app.broker.account_values(account).cash
    with app.Session() as s:
        positions = s.scalars(select(Position).where(Position.account == account)).all()
        fills = s.scalars(select(Fill).where(Fill.account == account).order_by(Fill.id)).all()
        orders = {o.client_order_id: o for o in s.scalars(select(Order).where(Order.account == account))}
        trades = s.scalars(select(Trade).where(Trade.account == account).order_by(Trade.id)).all()

    # one position row, ours, equal to the broker's
    assert [(p.strategy_id, p.symbol) for p in positions] in ([], [(strategy_id, CONTRACT.symbol)])
    pos = positions[0] if positions else None
    qty = pos.quantity if pos else 0.0
    theirs = broker_pos.get(CONTRACT.symbol)
    assert qty == (theirs.quantity if theirs else 0.0), (qty, theirs)
    if theirs is not None:
        assert math.isclose(pos.avg_cost, theirs.avg_cost, rel_tol=1e-9), (pos.avg_cost, theirs.avg_cost)
        assert theirs.market_price == close
    assert qty >= 0, f"long only, but the position is {qty}"
    assert set(broker_pos) <= {CONTRACT.symbol}

    # every broker fill is recorded exactly once, and our fills add up to our position
    assert sorted(f.exec_id for f in fills) == sorted(f.exec_id for f in broker_fills)
    assert len({f.exec_id for f in fills}) == len(fills)
    assert sum(_signed(f.side, f.quantity) for f in fills) == qty

    # broker cash = initial − what our fills paid, commissions included
    paid = sum(_signed(f.side, f.quantity) * f.price + f.commission for f in fills)
    assert math.isclose(cash, initial - paid, rel_tol=1e-9, abs_tol=1e-6), (cash, initial - paid)

    # initial + realized + unrealized(last close) == cash + quantity × last close
    realized = pos.realized_pnl if pos else 0.0
    unrealized = qty * (close - pos.avg_cost) if qty else 0.0
    lhs, rhs = initial + realized + unrealized, cash + qty * close
    assert math.isclose(lhs, rhs, rel_tol=1e-6), (lhs, rhs)

    # no client order id twice at the broker (its recent list), every order of ours is known to the broker under
    # its id (looked up one by one: the list only has recent ones), and our records say what the broker says
    coids = [bo.client_order_id for bo in broker_orders]
    assert len(coids) == len(set(coids)), coids
    assert set(coids) <= set(orders)
    by_coid = {}
    for coid, ours in orders.items():
        bo = app.broker.order(account, coid)
        assert bo is not None, f"the broker has no order {coid} ({ours.leg}, {ours.state})"
        by_coid[coid] = bo
        assert ours.state == bo.status, (coid, ours.leg, ours.state, bo.status, bo.reason)
        assert ours.broker_order_id == bo.broker_order_id
        assert ours.filled_quantity == bo.filled_quantity
        if bo.status == "FILLED":
            assert math.isclose(ours.avg_fill_price, bo.avg_fill_price, rel_tol=1e-9)
    for bo in broker_orders:
        assert by_coid[bo.client_order_id] == bo

    # brackets: one-cancels-other, and a cancelled parent takes its children with it
    children = defaultdict(list)
    for bo in by_coid.values():
        if bo.parent_client_order_id:
            children[bo.parent_client_order_id].append(bo)
    for parent_coid, kids in children.items():
        parent = by_coid[parent_coid]
        statuses = sorted(k.status for k in kids)
        assert len(kids) == 2
        filled = [k for k in kids if k.status == "FILLED"]
        assert len(filled) <= 1, f"both children of {parent_coid} filled"
        if filled:
            assert parent.status == "FILLED"
            assert statuses == ["CANCELLED", "FILLED"], statuses
        if parent.status == "CANCELLED":
            assert statuses == ["CANCELLED", "CANCELLED"], statuses
        if parent.status == "SUBMITTED":
            assert statuses == ["SUBMITTED", "SUBMITTED"], statuses
        assert all(k.quantity == parent.quantity for k in kids)

    # trades: one open trade exactly while a position is open; their P&L adds up to the realized P&L
    open_trades = [t for t in trades if t.status == "open"]
    assert len(open_trades) == (1 if qty else 0)
    assert math.isclose(sum(t.pnl for t in trades), realized, rel_tol=1e-9, abs_tol=1e-6)
    if open_trades:
        assert open_trades[0].quantity == qty
    # round trips, replayed from the fills in the order the broker executed them (by time, then broker order id)
    trips = _round_trips(broker_fills)
    assert len(trips) == len(trades)
    for trip, trade in zip(trips, trades, strict=True):
        bought = sum(f.quantity for f in trip["buys"])
        assert trade.quantity == bought
        if trade.status == "closed":
            assert sum(f.quantity for f in trip["sells"]) == bought


def _round_trips(broker_fills) -> list[dict]:
    executed = sorted(broker_fills, key=lambda f: (f.time, int(f.broker_order_id)))
    trips, running, current = [], 0.0, None
    for f in executed:
        if running == 0:
            current = {"buys": [], "sells": []}
            trips.append(current)
        current["buys" if f.side == "BUY" else "sells"].append(f)
        running += _signed(f.side, f.quantity)
        assert running >= 0, "the broker went short"
    return trips


def _check_trade_prices(app, account: str) -> None:
    """Each trade's entry price is what its buys paid, its exit price what its sells got (long only)."""
    with app.Session() as s:
        trades = s.scalars(select(Trade).where(Trade.account == account).order_by(Trade.id)).all()
        recorded = [(f.side, f.price) for f in s.scalars(select(Fill).where(Fill.account == account)
                                                          .order_by(Fill.id))]
    trips = _round_trips(app.broker.fills(account))
    executed = [(f.side, f.price) for trip in trips for f in trip["buys"] + trip["sells"]]
    for trip, trade in zip(trips, trades, strict=True):
        bought = sum(f.quantity for f in trip["buys"])
        vwap = sum(f.price * f.quantity for f in trip["buys"]) / bought
        assert math.isclose(trade.entry_price, vwap, rel_tol=1e-9), (trade.entry_price, vwap, recorded, executed)
        if trade.status == "closed":
            vwap = sum(f.price * f.quantity for f in trip["sells"]) / bought
            assert math.isclose(trade.exit_price, vwap, rel_tol=1e-9), (trade.exit_price, vwap, recorded, executed)
    # and our fills were applied in the order they happened (a child's fill after its parent's)
    running = 0.0
    with app.Session() as s:
        for f in s.scalars(select(Fill).where(Fill.account == account).order_by(Fill.id)):
            running += _signed(f.side, f.quantity)
            assert running >= 0, f"our books went short when {f.exec_id} was recorded: {recorded}"


def _trade(app, settings, start: int, plan: list[dict]) -> tuple[str, int]:
    _empty_tables(app)  # hypothesis runs many examples on one fixture: every example starts from nothing
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    initial = settings.sim_initial_cash
    assert app.broker.account_values(account).cash == initial == 100_000.0
    i = start
    app.broker.sync(account, SESSIONS[i].to_pydatetime(), (CONTRACT,))
    for step in plan:
        close = float(BARS["close"].iloc[i])
        if step["kind"] == "buy":
            pos = _our_position(app, account, strategy.id)
            if pos is None or pos.quantity == 0:  # like the risk gate: no new entry while a position is open
                cash = app.broker.account_values(account).cash
                _buy(app, user_id, strategy.id, account, close, cash, step)
        elif step["kind"] == "exit":
            pos = _our_position(app, account, strategy.id)
            if pos is not None and pos.quantity > 0:
                _exit(app, user_id, strategy.id, account, pos.quantity)
        elif step["kind"] == "cancel":
            with app.Session() as s:
                working = s.scalars(select(Order).where(Order.account == account, Order.state == "SUBMITTED")
                                    .order_by(Order.id)).all()
            if working:
                order = working[step["pick"] % len(working)]
                assert cancel(app, order.id, user_id=user_id) == "requested"
                _note(f"cancelled {order.client_order_id} ({order.leg})")
        elif step["kind"] == "reconcile":
            report = reconcile(app, user_id)
            _note(f"reconcile: {report}")
            assert report["position_mismatches"] == [] and report["resent"] == [] and report["adopted"] == []
            assert report["fills"] == [], "sync_account already recorded every fill"
        if i + step["gap"] >= len(SESSIONS):
            break  # the sample data ends on 2018-12-31
        i += step["gap"]
        app.broker.sync(account, SESSIONS[i].to_pydatetime(), (CONTRACT,))
        synced = sync_account(app, user_id, account)
        _note(f"{SESSIONS[i]}: {synced}")
        if currently_in_test_context():
            for f in synced["fills"]:
                event(f"filled: {f['client_order_id'].rsplit('-', 1)[1]}")
        _check(app, account, strategy.id, initial, float(BARS["close"].iloc[i]), synced)
    return account, strategy.id


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(FIRST, LAST), plan=plan_st)
def test_books_follow_the_broker_through_random_trading(app, settings, start, plan):
    _trade(app, settings, start, plan)


def _mkt_buy(gap: int) -> dict:
    return {"kind": "buy", "entry_type": OrderType.MKT, "entry_offset": 0.0, "stop_pct": 0.03125,
            "target_pct": 0.03125, "size": 0.25, "gap": gap}


def test_trade_prices_by_hand_when_entry_and_target_fill_in_one_session(app, settings):
    """A bracket whose entry (broker id 1) and target (id 3) fill on the same bar (2011-10-27): booked in order."""
    start = int(SESSIONS.searchsorted(pd.Timestamp("2011-10-26 20:00", tz="UTC")))
    account, _ = _trade(app, settings, start, [_mkt_buy(1)])
    _check_trade_prices(app, account)
    # by hand: close 2011-10-26 = 1242.00 → 20 units (floor(25,000 / 1242)), stop round(1242 × 0.96875, 2)
    # = 1203.19, target round(1242 × 1.03125, 2) = 1280.81. 2011-10-27 opens at 1243.97: the MKT entry pays
    # 5 bp slippage, 1243.97 × 1.0005 = 1244.592; the high (1292.66) takes the target at 1280.81.
    # P&L = 20 × (1280.81 − 1244.592) − 2 × 1.00 commission = 722.36; R = 722.36 / (38.81 × 20) = 0.9306.
    with app.Session() as s:
        (trade,) = s.scalars(select(Trade)).all()
    assert (trade.status, trade.quantity, trade.entry_price, trade.exit_price) == ("closed", 20, 1244.592, 1280.81)
    assert trade.pnl == pytest.approx(722.36, abs=1e-9) and trade.r_multiple == 0.9306
    assert app.broker.account_values(account).cash == pytest.approx(100_722.36, abs=1e-6)
    assert app.broker.positions(account) == []


def test_entry_booked_before_its_target_when_both_fill_in_one_session_across_id_9_to_10(app, settings):
    # Found by the property test above. 2011-10-19 .. 2011-10-27: bracket 1-3 fills and hits its target,
    # bracket 4-6 fills and is exited (order 7); bracket 8-10 buys at the open of 2011-10-27 (order 8) and
    # its target (order 10) fills the same day. Ordering those fills by exec_id as text ("sim-10-1" before
    # "sim-8-1") once booked the SELL before its BUY.
    start = int(SESSIONS.searchsorted(pd.Timestamp("2011-10-14 20:00", tz="UTC")))
    plan = [{"kind": "exit", "gap": 3}, _mkt_buy(3), _mkt_buy(1), {"kind": "exit", "gap": 1}, _mkt_buy(1)]
    account, _ = _trade(app, settings, start, plan)
    fills = app.broker.fills(account)
    same_day = [f for f in fills if f.time == fills[-1].time]
    assert sorted(f.broker_order_id for f in same_day) == ["10", "8"]  # the scenario: ids crossing 9 → 10
    assert [f.broker_order_id for f in fills][-2:] == ["8", "10"]  # the broker now lists the entry first
    _check_trade_prices(app, account)


def _bracket_on(app, user_id, strategy_id, account, symbol: str, day: str, qty: int) -> None:
    """Let the symbol's simulator clock reach ``day``'s close, buy a MKT bracket, let one session pass, sync."""
    contract = SampleMarketData().resolve(symbol)
    bars = load_sample_daily(symbol)
    i = int(bars.index.searchsorted(pd.Timestamp(f"{day} 21:00", tz="UTC")))
    app.broker.sync(account, bars.index[i].to_pydatetime(), (contract,))
    close = float(bars["close"].iloc[i])
    specs = bracket(str(uuid.uuid4()), Side.BUY, qty, entry_type=OrderType.MKT, entry_price=close,
                    stop_price=round(close * 0.8, 2), target_price=round(close * 1.2, 2))
    orders = save_intents(app, user_id=user_id, strategy_id=strategy_id, execution_id=None, account=account,
                          contract=contract, specs=specs, risk_per_unit=close * 0.2)
    assert send(app, orders).status == "accepted"
    app.broker.sync(account, bars.index[i + 1].to_pydatetime(), (contract,))
    sync_account(app, user_id, account)


def test_fills_of_an_instrument_on_an_earlier_clock_are_booked(app):
    # The simulator keeps one clock per instrument "so a replayed strategy and a real-time one can share an
    # account": here SPX has reached 2017 and COMP replays 2006. Both entries fill at the broker.
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    _bracket_on(app, user_id, strategy.id, account, "SPX", "2017-03-01", 5)
    _bracket_on(app, user_id, strategy.id, account, "COMP", "2006-03-01", 7)
    theirs = {p.symbol: p.quantity for p in app.broker.positions(account)}
    assert theirs == {"SPX": 5.0, "COMP": 7.0}
    with app.Session() as s:
        ours = {p.symbol: p.quantity for p in s.scalars(select(Position).where(Position.account == account))}
        comp_entry = s.scalar(select(Order).where(Order.symbol == "COMP", Order.leg == "entry"))
    assert app.broker.order(account, comp_entry.client_order_id).status == "FILLED"
    assert ours == theirs
    assert comp_entry.state == "FILLED"
