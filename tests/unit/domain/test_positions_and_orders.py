"""Positions from fills, the order state machine, client order ids and brackets, commissions and statistics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tradetrail.domain.commissions import SCHEDULES, commission, per_unit_and_minimum
from tradetrail.domain.orders import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    Leg,
    OrderSpec,
    OrderState,
    OrderType,
    Side,
    bracket,
    check_transition,
    client_order_id,
)
from tradetrail.domain.positions import Position, apply_fill
from tradetrail.domain.stats import TradeResult, max_drawdown, statistics

PROPS = hsettings(max_examples=300, deadline=None)


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, scale)


# -- positions ---------------------------------------------------------------------------------------------------

fill_st = st.tuples(
    st.sampled_from(["BUY", "SELL"]),
    st.one_of(st.integers(1, 1_000).map(float), st.floats(0.001, 5_000.0, allow_nan=False)),
    st.floats(0.01, 10_000.0, allow_nan=False),
    st.one_of(st.just(0.0), st.floats(0.0, 50.0, allow_nan=False)),
)


@PROPS
@given(fills=st.lists(fill_st, min_size=1, max_size=40), marks=st.lists(st.floats(0.01, 10_000.0), min_size=1,
                                                                        max_size=4),
       initial=st.floats(0.0, 1e7))
def test_initial_plus_pnl_equals_cash_plus_market_value_at_any_price(fills, marks, initial):
    pos, cash = Position(), initial
    scale = initial
    for side, qty, price, fee in fills:
        before = pos
        pos, realized = apply_fill(pos, side, qty, price, fee)
        signed = qty if side == "BUY" else -qty
        cash -= signed * price + fee
        scale += qty * price + fee
        assert _close(pos.quantity, before.quantity + signed, abs(before.quantity) + qty)
        assert _close(pos.realized_pnl, before.realized_pnl + realized, scale)
        if pos.quantity != 0:
            assert pos.avg_cost > 0
        else:
            assert pos.avg_cost == 0.0
        for p in [*marks, price]:
            lhs = initial + pos.realized_pnl + pos.unrealized(p)
            rhs = cash + pos.quantity * p
            assert _close(lhs, rhs, scale + abs(pos.quantity) * p), (lhs, rhs)


@PROPS
@given(fills=st.lists(fill_st, min_size=1, max_size=40))
def test_realized_pnl_moves_only_on_reductions_apart_from_commission(fills):
    pos = Position()
    for side, qty, price, fee in fills:
        before = pos
        pos, realized = apply_fill(pos, side, qty, price, fee)
        signed = qty if side == "BUY" else -qty
        opening = before.quantity == 0 or (before.quantity > 0) == (signed > 0)
        if opening:
            assert realized == -fee  # exactly the commission, nothing else
            # the average cost is the quantity-weighted mean of the old cost and the fill price
            expected = (abs(before.quantity) * before.avg_cost + qty * price) / abs(pos.quantity)
            assert math.isclose(pos.avg_cost, expected, rel_tol=1e-12)
        else:
            closing = min(abs(before.quantity), qty)
            direction = 1 if before.quantity > 0 else -1
            expected = -fee + closing * (price - before.avg_cost) * direction
            assert math.isclose(realized, expected, rel_tol=1e-9, abs_tol=1e-9 * (closing * price + fee + 1))
            if abs(pos.quantity) > 0 and (pos.quantity > 0) == (before.quantity > 0):
                assert pos.avg_cost == before.avg_cost  # what is left keeps its cost
            elif pos.quantity != 0:
                assert pos.avg_cost == price  # flipped: the new side opened at this fill


def test_average_cost_and_realized_by_hand():
    pos, r1 = apply_fill(Position(), "BUY", 10, 100.0, 1.0)
    assert (pos.quantity, pos.avg_cost, r1) == (10, 100.0, -1.0)
    pos, r2 = apply_fill(pos, "BUY", 10, 110.0, 1.0)
    assert (pos.quantity, pos.avg_cost, r2) == (20, 105.0, -1.0)  # (10 × 100 + 10 × 110) / 20
    pos, r3 = apply_fill(pos, "SELL", 5, 120.0, 1.0)
    assert r3 == 5 * (120.0 - 105.0) - 1.0 == 74.0  # 75 on the reduction, less the commission
    assert (pos.quantity, pos.avg_cost, pos.realized_pnl) == (15, 105.0, 72.0)  # −1 −1 +74
    assert pos.unrealized(100.0) == 15 * (100.0 - 105.0) == -75.0
    pos, r4 = apply_fill(pos, "SELL", 20, 90.0, 0.0)  # close 15 at a loss of 15 each, then short 5 at 90
    assert r4 == 15 * (90.0 - 105.0) == -225.0
    assert (pos.quantity, pos.avg_cost, pos.realized_pnl) == (-5, 90.0, -153.0)
    assert pos.unrealized(80.0) == 50.0  # short 5 from 90, now 80
    pos, r5 = apply_fill(pos, "BUY", 5, 95.0, 0.5)
    assert (pos.quantity, pos.avg_cost, r5) == (0, 0.0, -25.5)


@pytest.mark.parametrize("args", [("BUY", 0, 100.0, 0.0), ("BUY", -1, 100.0, 0.0), ("SELL", 1, 0.0, 0.0),
                                  ("BUY", 1, 100.0, float("nan")), ("BUY", 1, float("inf"), 0.0),
                                  ("BUY", float("nan"), 100.0, 0.0), ("SELL", 1, 100.0, float("-inf"))])
def test_invalid_fills_are_refused(args):
    with pytest.raises(ValueError, match="invalid fill"):
        apply_fill(Position(), *args)


def test_a_negative_commission_is_a_rebate_credited_to_realized_pnl():
    pos, realized = apply_fill(Position(), "BUY", 10, 100.0, -0.35)  # IBKR reports a rebate as a negative commission
    assert realized == 0.35 and pos.realized_pnl == 0.35 and pos.avg_cost == 100.0


# -- order state machine -------------------------------------------------------------------------------------------

ALL_PAIRS = [(a, b) for a in OrderState for b in OrderState]


def test_every_state_has_a_transition_entry_and_terminal_open_partition_the_states():
    assert set(TRANSITIONS) == set(OrderState)
    assert TERMINAL | OPEN == set(OrderState) and not TERMINAL & OPEN
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_transition_allowed_exactly_when_listed_or_staying_put(current, new):
    if current == new or new in TRANSITIONS[current]:
        assert check_transition(current, new) == new
        assert check_transition(current.value, new.value) == new  # plain strings as stored in the database
    else:
        with pytest.raises(InvalidTransition, match=f"from {current} to {new}"):
            check_transition(current, new)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_allow_nothing_but_staying_put(state):
    assert check_transition(state, state) == state
    for other in OrderState:
        if other != state:
            with pytest.raises(InvalidTransition):
                check_transition(state, other)


def test_no_order_is_ever_resent_from_unknown_or_back_from_submitted():
    # UNKNOWN may go back to NEW only through reconciliation; never straight to SUBMITTING (a resend)
    assert OrderState.SUBMITTING not in TRANSITIONS[OrderState.UNKNOWN]
    assert OrderState.NEW not in TRANSITIONS[OrderState.SUBMITTED]
    with pytest.raises(ValueError):
        check_transition("FILLED", "NOT_A_STATE")


@PROPS
@given(path=st.lists(st.sampled_from(list(OrderState)), max_size=30))
def test_random_walks_follow_the_table_and_never_leave_a_terminal_state(path):
    state, terminal_at = OrderState.NEW, None
    for step, nxt in enumerate(path):
        try:
            moved = check_transition(state, nxt)
        except InvalidTransition:
            assert nxt != state and nxt not in TRANSITIONS[state]
            continue
        assert moved == nxt and (nxt == state or nxt in TRANSITIONS[state])
        if terminal_at is not None:
            assert moved == state, f"left terminal {state} at step {step}"
        state = moved
        if state in TERMINAL and terminal_at is None:
            terminal_at = step


# -- client order ids and brackets ----------------------------------------------------------------------------------

exec_id_st = st.one_of(st.uuids().map(str), st.text(min_size=0, max_size=200))


@PROPS
@given(a=exec_id_st, b=exec_id_st)
def test_client_order_id_deterministic_short_and_distinct(a, b):
    ids = {leg: client_order_id(a, leg) for leg in Leg}
    for leg, coid in ids.items():
        assert coid == client_order_id(a, leg) == client_order_id(a, leg.value)  # same inputs, same id
        assert len(coid) <= 40 and coid.isascii()
        assert coid.startswith("tt-") and coid.endswith(f"-{leg.value}")
    assert len(set(ids.values())) == len(Leg)  # differs by leg
    if a != b:
        for leg in Leg:
            assert client_order_id(a, leg) != client_order_id(b, leg)  # differs by execution


def test_client_order_id_refuses_an_unknown_leg():
    with pytest.raises(ValueError):
        client_order_id("x", "stoploss")


@PROPS
@given(execution=exec_id_st, side=st.sampled_from(list(Side)), qty=st.integers(1, 10_000),
       entry_type=st.sampled_from([OrderType.MKT, OrderType.LMT]), entry=st.floats(1.0, 10_000.0),
       stop_f=st.floats(0.5, 0.99), target_f=st.floats(1.01, 2.0))
def test_bracket_children_reference_the_parent_and_exit_on_the_other_side(execution, side, qty, entry_type, entry,
                                                                          stop_f, target_f):
    stop, target = entry * stop_f, entry * target_f
    parent, stop_leg, target_leg = bracket(execution, side, qty, entry_type=entry_type, entry_price=entry,
                                           stop_price=stop, target_price=target)
    exit_side = Side.SELL if side == Side.BUY else Side.BUY
    assert (parent.leg, parent.side, parent.order_type, parent.quantity) == (Leg.ENTRY, side, entry_type, qty)
    assert parent.parent_client_order_id is None and parent.tif == "DAY"
    assert parent.client_order_id == client_order_id(execution, Leg.ENTRY)
    assert parent.limit_price == (entry if entry_type == OrderType.LMT else None) and parent.stop_price is None
    assert (stop_leg.leg, stop_leg.side, stop_leg.order_type, stop_leg.stop_price, stop_leg.limit_price) == (
        Leg.STOP, exit_side, OrderType.STP, stop, None)
    assert (target_leg.leg, target_leg.side, target_leg.order_type, target_leg.limit_price,
            target_leg.stop_price) == (Leg.TARGET, exit_side, OrderType.LMT, target, None)
    for child in (stop_leg, target_leg):
        assert child.parent_client_order_id == parent.client_order_id
        assert child.quantity == qty and child.tif == "GTC"
        assert child.client_order_id == client_order_id(execution, child.leg)
    assert len({o.client_order_id for o in (parent, stop_leg, target_leg)}) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"order_type": OrderType.MKT, "quantity": 0}, "quantity must be positive"),
    ({"order_type": OrderType.LMT, "quantity": 1}, "limit order needs a positive limit price"),
    ({"order_type": OrderType.LMT, "quantity": 1, "limit_price": 0.0}, "limit order needs a positive limit price"),
    ({"order_type": OrderType.STP, "quantity": 1, "stop_price": -1.0}, "stop order needs a positive stop price"),
    ({"order_type": OrderType.MKT, "quantity": 1, "client_order_id": "x" * 41}, "longer than 40"),
])
def test_order_spec_refuses_what_the_broker_would(kwargs, message):
    base = {"client_order_id": "tt-1", "leg": Leg.ENTRY, "side": Side.BUY}
    with pytest.raises(ValueError, match=message):
        OrderSpec(**{**base, **kwargs})


# -- commissions ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "qty", "price", "expected"), [
    # fixed: 0.005/share, minimum 1.00, at most 1 % of the order value
    ("fixed", 100, 50.0, 1.00),  # 0.50 → minimum 1.00 (cap 50.00)
    ("fixed", 1_000, 50.0, 5.00),  # 1,000 × 0.005
    ("fixed", 1_000, 0.10, 1.00),  # 5.00 but capped at 1 % of 100.00
    ("fixed", 10, 5.0, 0.50),  # minimum 1.00 but capped at 1 % of 50.00
    ("fixed", 333, 20.0, 1.665),  # 333 × 0.005
    # tiered (first tier): 0.0035/share, minimum 0.35, at most 1 %
    ("tiered", 100, 50.0, 0.35),  # 0.35 = 100 × 0.0035 = minimum
    ("tiered", 50, 50.0, 0.35),  # 0.175 → minimum
    ("tiered", 1_000, 50.0, 3.50),
    ("tiered", 1_000, 0.10, 1.00),  # 3.50 capped at 1 % of 100.00
    ("tiered", 10, 1.0, 0.10),  # minimum 0.35 capped at 1 % of 10.00
    ("none", 1_000, 50.0, 0.0),
])
def test_commission_by_hand(schedule, qty, price, expected):
    assert commission(schedule, qty, price) == pytest.approx(expected, abs=1e-12)


@PROPS
@given(schedule=st.sampled_from(sorted(SCHEDULES)), qty=st.integers(1, 1_000_000), price=st.floats(0.01, 10_000.0))
def test_commission_bounds(schedule, qty, price):
    fee = commission(schedule, qty, price)
    per_unit, minimum = per_unit_and_minimum(schedule)
    assert 0 <= fee <= round(0.01 * qty * price, 4) + 1e-9  # never above 1 % of value
    assert fee <= max(per_unit * qty, minimum) + 1e-9  # never above the schedule
    if schedule != "none" and 0.01 * qty * price >= minimum:
        assert fee >= minimum - 1e-9


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown commission schedule 'flat'"):
        commission("flat", 1, 1.0)


# -- statistics ----------------------------------------------------------------------------------------------------

def test_statistics_by_hand():
    trades = [TradeResult(100.0, 2.0), TradeResult(-50.0, -1.0), TradeResult(200.0, 4.0), TradeResult(-25.0, -0.5),
              TradeResult(0.0, None)]
    equity = [100.0, 120.0, 90.0, 130.0, 110.0, 140.0]
    st_ = statistics(trades, equity)
    assert (st_.trades, st_.wins, st_.losses) == (5, 2, 3)  # a flat trade is not a win
    assert st_.win_rate == 40.0  # 2 of 5
    assert st_.profit_factor == 4.0  # (100 + 200) / (50 + 25 + 0)
    assert st_.average_win == 150.0 and st_.average_loss == -25.0  # (−50 − 25 + 0) / 3
    assert st_.largest_win == 200.0 and st_.largest_loss == -50.0
    assert st_.average_r == 1.125  # (2 − 1 + 4 − 0.5) / 4; the trade without R is left out
    assert st_.max_drawdown == 30.0 and st_.max_drawdown_pct == 25.0  # 120 → 90
    assert st_.to_dict()["profit_factor"] == 4.0


def test_statistics_edges():
    empty = statistics([], [])
    assert (empty.trades, empty.win_rate, empty.profit_factor, empty.average_r, empty.max_drawdown,
            empty.max_drawdown_pct) == (0, None, None, None, 0.0, None)
    winners = statistics([TradeResult(10.0, 1.0), TradeResult(30.0, 3.0)], [100.0, 110.0, 140.0])
    assert winners.win_rate == 100.0 and winners.profit_factor is None and winners.max_drawdown == 0.0
    losers = statistics([TradeResult(-10.0, -1.0)], [100.0, 90.0])
    assert losers.win_rate == 0.0 and losers.profit_factor == 0.0
    assert (losers.max_drawdown, losers.max_drawdown_pct) == (10.0, 10.0)


@PROPS
@given(curve=st.lists(st.floats(1.0, 1e6), min_size=1, max_size=50))
def test_max_drawdown_is_the_largest_fall_from_an_earlier_peak(curve):
    dd, _ = max_drawdown(curve)
    brute = max([curve[i] - curve[j] for i in range(len(curve)) for j in range(i, len(curve))] + [0.0])
    assert dd == pytest.approx(brute, abs=1e-4)


def test_max_drawdown_percent_is_the_largest_percentage_fall():
    from tradetrail.domain.stats import max_drawdown

    # 100 -> 50 falls 50 % (50 in money); 200 -> 120 falls 40 % (80 in money): each figure is its own maximum.
    assert max_drawdown([100, 50, 200, 120]) == (80.0, 50.0)
    assert max_drawdown([100, 110, 120]) == (0.0, None)


def test_fractional_fills_close_the_position_exactly():
    from tradetrail.domain.positions import Position, apply_fill

    pos, _ = apply_fill(Position(), "BUY", 0.1, 100.0, 0.0)
    pos, _ = apply_fill(pos, "BUY", 0.2, 100.0, 0.0)
    pos, _ = apply_fill(pos, "SELL", 0.3, 101.0, 0.0)  # 0.1 + 0.2 - 0.3 is 5.55e-17 in floats
    assert pos.quantity == 0.0 and pos.avg_cost == 0.0
