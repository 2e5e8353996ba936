"""Property tests of the pure risk gate (:func:`tradetrail.domain.risk.evaluate`).

Whatever the account, limits and levels, an approved entry must stay inside every limit, and a denial must say
which rule said no and with what numbers. The sizing arithmetic is also checked by hand on small examples.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tradetrail.domain.commissions import commission, per_unit_and_minimum
from tradetrail.domain.risk import EntryPrice, RiskInputs, RiskLimits, TradingState, evaluate

PROPS = hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENTRY_RULES = {"trading_state", "levels", "position_open", "orders_pending", "equity", "min_reward_risk", "min_size",
               "max_exposure", "max_open_positions", "daily_loss_limit", "consecutive_losses", "sizing_price"}
ORDER = [TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED]


def _f(lo: float, hi: float):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def effective_state(i: RiskInputs) -> TradingState:
    return max(i.strategy_state, i.global_state, key=ORDER.index)


# -- strategies ------------------------------------------------------------------------------------------------

limits_st = st.builds(
    RiskLimits,
    risk_per_trade_pct=_f(0.01, 5.0), max_position_pct=_f(0.1, 100.0), max_exposure_pct=_f(1.0, 100.0),
    max_open_positions=st.integers(1, 1000), min_reward_risk=_f(0.1, 20.0) | _f(0.1, 3.0),
    daily_loss_limit_pct=_f(0.1, 100.0), max_consecutive_losses=st.integers(1, 100) | st.integers(1, 5))

commission_st = st.one_of(
    st.sampled_from([per_unit_and_minimum(s) for s in ("fixed", "tiered", "none")]),
    st.tuples(_f(0.0, 1.0), _f(0.0, 20.0)))


def _mostly(good, bad):
    """``good`` three times out of four, so every rule is broken now and then but not all of them at once."""
    return st.one_of(good, good, good, bad)


@st.composite
def inputs_st(draw, healthy: bool = False) -> RiskInputs:
    """Account figures; ``healthy`` ones break no discrete rule, so entries are often approved."""
    if healthy:
        equity = draw(_f(1_000.0, 1e8))
        cash = draw(st.one_of(st.just(equity), _f(0.0, equity)))
        exposure = draw(st.one_of(st.just(0.0), _f(0.0, equity * 0.5)))
        per_unit, minimum = draw(commission_st)
        return RiskInputs(equity=equity, cash=cash, exposure=exposure, open_positions=draw(st.integers(0, 2)),
                          position_qty=0.0, day_start_equity=equity * draw(_f(0.95, 1.0)),
                          consecutive_losses=0, commission_per_unit=per_unit, min_commission=minimum)
    equity = draw(_mostly(_f(1_000.0, 1e8), st.one_of(_f(-1e5, 0.0), _f(0.01, 1_000.0))))
    cash = draw(_mostly(st.just(max(equity, 0.0)), _f(0.0, max(equity, 0.0) * 1.2 + 1.0) | _f(0.0, 1e8)))
    exposure = draw(_mostly(st.just(0.0) | _f(0.0, max(equity, 1.0) * 0.5), _f(0.0, max(equity, 1.0) * 1.5)))
    per_unit, minimum = draw(commission_st)
    state = _mostly(st.just(TradingState.ACTIVE), st.sampled_from(list(TradingState)))
    return RiskInputs(
        equity=equity, cash=cash, exposure=exposure, open_positions=draw(_mostly(st.integers(0, 3),
                                                                                 st.integers(0, 40))),
        position_qty=float(draw(_mostly(st.just(0), st.integers(-50, 5_000)))),
        day_start_equity=max(equity, 1.0) * draw(_mostly(_f(0.5, 1.0), _f(0.5, 1.5))),
        consecutive_losses=draw(_mostly(st.just(0), st.integers(0, 12))),
        strategy_state=draw(state), global_state=draw(state),
        commission_per_unit=per_unit, min_commission=minimum,
        pending_orders=draw(_mostly(st.just(0), st.integers(0, 3))))


any_inputs_st = st.one_of(inputs_st(), inputs_st(healthy=True))


@st.composite
def buy_levels_st(draw):
    """Mostly sane BUY levels (0 < stop < entry < target), sometimes not."""
    entry = draw(_mostly(_f(1.0, 1_000.0), _f(0.01, 100_000.0)))
    stop = entry * (1 - draw(_mostly(_f(0.0005, 0.1), _f(0.0005, 0.9))))
    target = entry + (entry - stop) * draw(_f(0.05, 25.0))
    good = (entry, stop, target)
    bad = st.sampled_from([(entry, None, target), (None, stop, target), (entry, stop, None), (entry, entry, target),
                           (entry, target, stop), (entry, stop, entry), (entry, -stop, target), (0.0, stop, target),
                           (entry, 0.0, target), (-entry, -entry * 2, target)])
    return draw(st.one_of(st.just(good), st.just(good), st.just(good), bad))


def _risk_bound(entry, stop, inputs, limits):
    """Largest unit count that each sizing rule allows (as real numbers, before rounding down)."""
    per_unit = entry - stop
    by_risk = inputs.equity * limits.risk_per_trade_pct / 100 / per_unit
    by_position = inputs.equity * limits.max_position_pct / 100 / entry
    by_cash = max(inputs.cash - inputs.min_commission, 0) / (entry + inputs.commission_per_unit)
    return by_risk, by_position, by_cash


def _levels_ok(entry, stop, target) -> bool:
    return None not in (entry, stop, target) and entry > 0 and stop > 0 and stop < entry < target


def _assert_denial_shape(decision, inputs, limits):
    assert decision.quantity == 0
    assert decision.denials, "a denied entry must name at least one rule"
    assert decision.reason
    for d in decision.denials:
        assert d.rule in ENTRY_RULES
        assert d.detail
        assert isinstance(d.numbers, dict) and d.numbers, f"denial {d.rule} carries no numbers"
        if d.rule == "trading_state":
            assert d.numbers == {"state": effective_state(inputs).value}
            assert effective_state(inputs) != TradingState.ACTIVE
        elif d.rule == "position_open":
            assert d.numbers == {"position": inputs.position_qty} and inputs.position_qty != 0
        elif d.rule == "orders_pending":
            assert d.numbers == {"pending_orders": inputs.pending_orders, "open_protection": inputs.open_protection}
            assert inputs.pending_orders + inputs.open_protection > 0
        elif d.rule == "equity":
            assert d.numbers == {"equity": inputs.equity} and inputs.equity <= 0
        elif d.rule == "max_open_positions":
            assert d.numbers == {"open_positions": inputs.open_positions}
            assert inputs.open_positions >= limits.max_open_positions
        elif d.rule == "consecutive_losses":
            assert d.numbers == {"consecutive_losses": inputs.consecutive_losses}
            assert inputs.consecutive_losses >= limits.max_consecutive_losses
        elif d.rule == "daily_loss_limit":
            loss_limit = inputs.day_start_equity * limits.daily_loss_limit_pct / 100
            assert d.numbers["limit"] == round(-loss_limit, 2)
            assert d.numbers["day_pnl"] == round(inputs.equity - inputs.day_start_equity, 2)
            assert inputs.equity - inputs.day_start_equity <= -loss_limit
        elif d.rule == "min_reward_risk":
            assert d.numbers["reward_risk"] < limits.min_reward_risk + 1e-4
        elif d.rule == "max_exposure":
            assert d.numbers["exposure_after_pct"] >= limits.max_exposure_pct - 0.01
        elif d.rule == "min_size":
            assert d.numbers["quantity"] == 0 and "capped_by" in d.numbers and "size_by_risk" in d.numbers
        elif d.rule == "levels":
            assert set(d.numbers) == {"entry", "stop", "target"}


# -- entries -----------------------------------------------------------------------------------------------------

@hsettings(PROPS, max_examples=1000)
@given(inputs=any_inputs_st, limits=limits_st, levels=buy_levels_st())
def test_an_approved_entry_never_crosses_a_limit_and_a_denial_always_says_why(inputs, limits, levels):
    entry, stop, target = levels
    d = evaluate("BUY", entry, stop, target, inputs, limits)
    assert d.action == "enter"
    if not d.approved:
        _assert_denial_shape(d, inputs, limits)
        rules = {x.rule for x in d.denials}
        # the discrete rules are never missed (they are checked whenever the levels can be read at all)
        if effective_state(inputs) != TradingState.ACTIVE:
            assert "trading_state" in rules
        if not _levels_ok(entry, stop, target):
            assert "levels" in rules
            return
        if inputs.position_qty != 0:  # long, or short from elsewhere: no new entry on top of it
            assert "position_open" in rules
        if inputs.pending_orders > 0:
            assert "orders_pending" in rules
        if inputs.equity <= 0:
            assert "equity" in rules
            return
        if inputs.open_positions >= limits.max_open_positions:
            assert "max_open_positions" in rules
        if inputs.consecutive_losses >= limits.max_consecutive_losses:
            assert "consecutive_losses" in rules
        if (target - entry) / (entry - stop) < limits.min_reward_risk:
            assert "min_reward_risk" in rules
        return

    qty = d.quantity
    assert isinstance(qty, int) and not isinstance(qty, bool) and qty >= 1
    assert d.denials == ()
    assert _levels_ok(entry, stop, target)
    per_unit = entry - stop
    equity = inputs.equity
    # risk budget
    budget = equity * limits.risk_per_trade_pct / 100
    assert qty * per_unit <= budget * (1 + 1e-12) + 2e-9 * per_unit, (qty, per_unit, budget)
    # max position % of equity
    cap = equity * limits.max_position_pct / 100
    assert qty * entry <= cap * (1 + 1e-12) + 2e-9 * entry, (qty, entry, cap)
    # cash, commission included (commission = max(per unit × qty, minimum); the 1 % cap only lowers it)
    fee = max(inputs.commission_per_unit * qty, inputs.min_commission)
    assert qty * entry + fee <= inputs.cash * (1 + 1e-12) + 2e-9 * (entry + inputs.commission_per_unit)
    # exposure after the entry
    assert (inputs.exposure + qty * entry) / equity * 100 <= limits.max_exposure_pct + 1e-9
    # discrete rules
    assert inputs.open_positions < limits.max_open_positions
    assert inputs.equity - inputs.day_start_equity > -(inputs.day_start_equity * limits.daily_loss_limit_pct / 100)
    assert inputs.consecutive_losses < limits.max_consecutive_losses
    assert effective_state(inputs) == TradingState.ACTIVE
    assert inputs.strategy_state == TradingState.ACTIVE and inputs.global_state == TradingState.ACTIVE
    assert inputs.position_qty == 0
    assert inputs.pending_orders == 0
    assert (target - entry) / per_unit >= limits.min_reward_risk
    # the recorded numbers are the ones it decided with
    assert d.numbers["quantity"] == qty and d.numbers["entry"] == entry and d.numbers["stop"] == stop


@PROPS
@given(inputs=inputs_st(healthy=True), limits=limits_st, data=st.data())
def test_healthy_entry_is_sized_at_the_largest_quantity_every_sizing_rule_allows(inputs, limits, data):
    """The converse: with no discrete rule in the way, the gate approves, and buys as much as it may."""
    limits = dataclasses.replace(limits, max_exposure_pct=100.0, max_open_positions=30, max_consecutive_losses=10,
                                 daily_loss_limit_pct=max(limits.daily_loss_limit_pct, 6.0))
    inputs = dataclasses.replace(inputs, exposure=0.0)
    entry = data.draw(_f(0.01, 100_000.0), "entry")
    stop = entry * (1 - data.draw(_f(0.0005, 0.9), "stop fraction"))
    target = entry + (entry - stop) * limits.min_reward_risk * data.draw(_f(1.001, 5.0), "rr factor")
    d = evaluate("BUY", entry, stop, target, inputs, limits)
    bound = min(_risk_bound(entry, stop, inputs, limits))
    if bound < 1 - 1e-6:
        assert not d.approved and [x.rule for x in d.denials] == ["min_size"]
        return
    if bound >= 1 + 1e-6:
        assert d.approved, d
    if d.approved:
        assert d.quantity <= bound + 1e-8  # allowed by every sizing rule
        assert d.quantity + 1 > bound  # one more unit would break one of them
        assert d.quantity == math.floor(bound + 1e-9)


@PROPS
@given(inputs=inputs_st(), limits=limits_st, levels=buy_levels_st(),
       state=st.sampled_from([TradingState.REDUCING, TradingState.HALTED]),
       where=st.sampled_from(["strategy", "global"]))
def test_no_entry_while_reducing_or_halted(inputs, limits, levels, state, where):
    inputs = dataclasses.replace(inputs, **{f"{where}_state": state})
    d = evaluate("BUY", *levels, inputs, limits)
    assert not d.approved and d.quantity == 0
    assert "trading_state" in {x.rule for x in d.denials}


@PROPS
@given(inputs=inputs_st(healthy=True), limits=limits_st, levels=buy_levels_st(),
       position=st.integers(-10_000, 10_000).filter(bool),
       pending=st.integers(0, 3))
def test_no_entry_while_a_position_is_open_or_orders_pending(inputs, limits, levels, position, pending):
    d = evaluate("BUY", *levels, dataclasses.replace(inputs, position_qty=float(position)), limits)
    assert not d.approved and d.quantity == 0
    d = evaluate("BUY", *levels, dataclasses.replace(inputs, pending_orders=pending + 1), limits)
    assert not d.approved and d.quantity == 0


@PROPS
@given(inputs=inputs_st(healthy=True), limits=limits_st, levels=buy_levels_st(),
       last_factor=st.one_of(st.just(1.0), _f(0.95, 1.05), _f(0.01, 100.0)),
       allowance=st.one_of(st.just(0.0), st.just(2.0), _f(0.0, 50.0)), fill_share=_f(0.0, 1.0))
def test_a_market_entry_stays_inside_every_cap_for_any_fill_up_to_the_sizing_price(inputs, limits, levels,
                                                                                   last_factor, allowance, fill_share):
    """Sized from the market (last price + allowance), whatever the analyst's entry: every fill at or below the
    sizing price keeps the risk budget, the position cap, the exposure cap and the cash (with commission)."""
    entry, stop, target = levels
    last = (entry if isinstance(entry, float) and entry > 0 else 100.0) * last_factor
    d = evaluate("BUY", entry, stop, target, inputs, limits, EntryPrice.market(last, allowance))
    if not d.approved:
        assert d.quantity == 0 and d.denials
        return
    qty, sizing = d.quantity, last * (1 + allowance / 100)
    assert d.numbers["sizing_price"] == pytest.approx(sizing) and d.numbers["reference_price"] == last
    assert stop < last and (target - last) / (last - stop) >= limits.min_reward_risk
    fill = last + (sizing - last) * fill_share  # anywhere from the last price up to the allowance
    equity, tol = inputs.equity, 1 + 1e-9
    assert qty * (fill - stop) <= equity * limits.risk_per_trade_pct / 100 * tol + 2e-9 * fill
    assert qty * fill <= equity * limits.max_position_pct / 100 * tol + 2e-9 * fill
    assert (inputs.exposure + qty * fill) / equity * 100 <= limits.max_exposure_pct * tol
    fee = max(inputs.commission_per_unit * qty, inputs.min_commission)
    assert qty * fill + fee <= inputs.cash * tol + 2e-9 * (fill + inputs.commission_per_unit)


# -- entries: hand-checked examples -------------------------------------------------------------------------------

ACCOUNT = RiskInputs(equity=100_000.0, cash=100_000.0, exposure=0.0, open_positions=0, position_qty=0.0,
                     day_start_equity=100_000.0, consecutive_losses=0)


def test_hand_checked_risk_sizing():
    # budget = 100,000 × 1 % = 1,000; risk per unit 100 − 95 = 5 → 200 units; position cap 20 % = 20,000 / 100
    # = 200 units; cash 100,000 / 100 = 1,000 units → 200, risking exactly 1,000.
    d = evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits())
    assert d.approved and d.quantity == 200
    assert d.numbers["size_by_risk"] == 200 and d.numbers["capped_by"] == {} and d.numbers["risk_budget"] == 1000.0
    assert d.numbers["reward_risk"] == 2.0 and d.numbers["exposure_after_pct"] == 20.0


def test_hand_checked_position_cap():
    # stop 99: 1,000 / 1 = 1,000 units by risk, but 20 % of 100,000 at 100 is 200 units
    d = evaluate("BUY", 100.0, 99.0, 102.0, ACCOUNT, RiskLimits())
    assert d.approved and d.quantity == 200
    assert d.numbers["size_by_risk"] == 1000 and d.numbers["capped_by"] == {"max_position_pct": 200}


def test_hand_checked_cash_cap_with_commission():
    # cash 5,000, IBKR fixed: 0.005/unit, minimum 1.00. by cash: floor((5,000 − 1.00) / (100 + 0.005))
    # = floor(4,999 / 100.005) = floor(49.9875) = 49. Check: 49 × 100 + commission(49 @ 100) = 4,900 + 1.00
    # = 4,901 ≤ 5,000, while 50 units would cost 5,000 + 1.00 > 5,000.
    per_unit, minimum = per_unit_and_minimum("fixed")
    inputs = dataclasses.replace(ACCOUNT, cash=5_000.0, commission_per_unit=per_unit, min_commission=minimum)
    d = evaluate("BUY", 100.0, 95.0, 110.0, inputs, RiskLimits())
    assert d.approved and d.quantity == 49
    assert d.numbers["capped_by"] == {"cash": 49}
    assert 49 * 100.0 + commission("fixed", 49, 100.0) == 4_901.0
    assert 50 * 100.0 + commission("fixed", 50, 100.0) > 5_000.0


def test_hand_checked_denials_carry_their_numbers():
    limits = RiskLimits()
    # reward 3, risk 5 → 0.6 < 1.0
    d = evaluate("BUY", 100.0, 95.0, 103.0, ACCOUNT, limits)
    assert not d.approved and [x.rule for x in d.denials] == ["min_reward_risk"]
    assert d.denials[0].numbers == {"reward_risk": 0.6}
    # day started at 100,000, equity now 97,000: −3,000 is exactly the 3 % limit
    d = evaluate("BUY", 100.0, 95.0, 110.0, dataclasses.replace(ACCOUNT, equity=97_000.0, cash=97_000.0), limits)
    assert not d.approved and [x.rule for x in d.denials] == ["daily_loss_limit"]
    assert d.denials[0].numbers == {"day_pnl": -3000.0, "limit": -3000.0}
    # 80,000 already exposed + 200 × 100 = 100 % > 90 %
    d = evaluate("BUY", 100.0, 95.0, 110.0, dataclasses.replace(ACCOUNT, exposure=80_000.0), limits)
    assert not d.approved and [x.rule for x in d.denials] == ["max_exposure"]
    assert d.denials[0].numbers == {"exposure_after_pct": 100.0}
    d = evaluate("BUY", 100.0, 95.0, 110.0, dataclasses.replace(ACCOUNT, open_positions=10, consecutive_losses=3),
                 limits)
    assert [(x.rule, x.numbers) for x in d.denials] == [("max_open_positions", {"open_positions": 10}),
                                                         ("consecutive_losses", {"consecutive_losses": 3})]
    # 1 % of 1,000 = 10 of risk, 50 per unit → 0 units
    d = evaluate("BUY", 100.0, 50.0, 200.0, dataclasses.replace(ACCOUNT, equity=1_000.0, day_start_equity=1_000.0),
                 limits)
    assert not d.approved and d.quantity == 0 and [x.rule for x in d.denials] == ["min_size"]
    assert d.denials[0].numbers["size_by_risk"] == 0


def test_non_finite_take_profit_is_denied():
    d = evaluate("BUY", 100.0, 95.0, math.inf, ACCOUNT, RiskLimits())
    assert not d.approved and d.quantity == 0 and d.denials[0].rule == "levels"


def test_absurdly_small_levels_are_denied_not_raised():
    d = evaluate("BUY", 2e-308, 1e-308, 1.0, ACCOUNT, RiskLimits())
    assert not d.approved and d.quantity == 0


odd_level = st.one_of(st.none(), st.just(math.nan), st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or abs(x) >= 1e-200))


@PROPS
@given(inputs=inputs_st(), limits=limits_st, levels=st.tuples(odd_level, odd_level, odd_level))
def test_any_finite_or_nan_levels_never_raise(inputs, limits, levels):
    """Never raises for a bad signal: NaN, None, negative or huge levels are denied, not crashed on.
    (Infinite and subnormal levels: the two xfail tests above.)"""
    entry, stop, target = levels
    d = evaluate("BUY", entry, stop, target, inputs, limits)
    if d.approved:
        assert d.quantity >= 1 and _levels_ok(entry, stop, target)
    else:
        assert d.quantity == 0 and d.denials


# -- exits, HOLD, unknown actions -----------------------------------------------------------------------------------

@PROPS
@given(inputs=inputs_st(), limits=limits_st, levels=buy_levels_st())
def test_exit_closes_exactly_the_position_unless_halted_or_pending(inputs, limits, levels):
    d = evaluate("SELL", *levels, inputs, limits)
    state = effective_state(inputs)
    if inputs.position_qty <= 0:
        assert (d.action, d.approved, d.quantity) == ("none", False, 0)  # nothing to close, no shorting
        return
    assert d.action == "exit"
    if state == TradingState.HALTED:
        assert not d.approved and d.quantity == 0
        assert [(x.rule, x.numbers) for x in d.denials] == [("trading_state", {"state": "HALTED"})]
    elif inputs.pending_orders > 0:  # an earlier exit may still be working: never sell twice
        assert not d.approved and d.quantity == 0
        assert [(x.rule, x.numbers) for x in d.denials] == [("orders_pending",
                                                              {"pending_orders": inputs.pending_orders})]
    else:  # ACTIVE or REDUCING: exits allowed, whatever the other limits say
        assert d.approved and d.quantity == inputs.position_qty  # exactly the position, fractions included
        assert d.denials == ()


@pytest.mark.parametrize("position", [0.5, 10.5])
def test_exit_of_a_fractional_position_closes_all_of_it(position):
    d = evaluate("SELL", None, None, None, dataclasses.replace(ACCOUNT, position_qty=position), RiskLimits())
    assert d.approved and d.quantity == position


@PROPS
@given(inputs=inputs_st(), limits=limits_st, levels=buy_levels_st(), action=st.sampled_from(["HOLD", "buy", "SHORT",
                                                                                             ""]))
def test_hold_and_unknown_actions_never_trade(inputs, limits, levels, action):
    d = evaluate(action, *levels, inputs, limits)
    assert (d.action, d.approved, d.quantity) == ("none", False, 0)
    if action != "HOLD":
        assert [x.rule for x in d.denials] == ["action"]


# -- limits validation ---------------------------------------------------------------------------------------------

RANGES = {"risk_per_trade_pct": (0.01, 5.0), "max_position_pct": (0.1, 100.0), "max_exposure_pct": (1.0, 100.0),
          "max_open_positions": (1, 1000), "min_reward_risk": (0.1, 20.0), "daily_loss_limit_pct": (0.1, 100.0),
          "max_consecutive_losses": (1, 100)}


def test_risk_per_trade_above_five_percent_is_rejected_naming_the_field():
    message = r"risk\.risk_per_trade_pct must be a number between 0\.01 and 5\.0, got 5\.01"
    with pytest.raises(ValueError, match=message):
        RiskLimits(risk_per_trade_pct=5.01)
    assert RiskLimits(risk_per_trade_pct=5.0).risk_per_trade_pct == 5.0


@PROPS
@given(name=st.sampled_from(sorted(RANGES)), data=st.data())
def test_every_limit_outside_its_range_is_rejected_with_its_name(name, data):
    lo, hi = RANGES[name]
    bad = data.draw(st.one_of(_f(-1e6, lo).filter(lambda v: v < lo), _f(hi, 1e6).filter(lambda v: v > hi),
                              st.just(float("nan")), st.just(True), st.just("1")), "bad")
    with pytest.raises(ValueError, match=rf"risk\.{name} must be a (whole )?number between"):
        RiskLimits(**{name: bad})
    good = data.draw(st.integers(int(lo), int(hi)) if isinstance(lo, int) else _f(lo, hi), "good")
    assert getattr(RiskLimits(**{name: good}), name) == good


@pytest.mark.parametrize("name", ["max_open_positions", "max_consecutive_losses"])
def test_whole_number_limits_refuse_fractions(name):
    with pytest.raises(ValueError, match=rf"risk\.{name} must be a whole number between"):
        RiskLimits(**{name: 2.5})


def test_open_protective_orders_block_a_new_entry():
    inputs = dataclasses.replace(ACCOUNT, open_protection=1)
    d = evaluate("BUY", 100.0, 95.0, 110.0, inputs, RiskLimits())
    assert not d.approved and d.denials[0].rule == "orders_pending"
    assert d.denials[0].numbers == {"pending_orders": 0, "open_protection": 1}
