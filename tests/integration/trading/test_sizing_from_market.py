"""Issue #11: the risk gate sizes from the price the order will trade at — a MKT entry from the last price plus
the slippage allowance, a LMT entry from its limit — never from the model's entry; a fill far from the price
an order was sized at is recorded on the order and in the lineage of the step that booked it."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tests.fakes.openai_server import VALID_BUY, Behaviour, FakeOpenAIServer
from tests.support.helpers import demo
from tests.support.llm_runs import FIRST_CLOSE, llm_app, llm_strategy, orders_and_events, run, step
from tradetrail.db.trading_models import Order
from tradetrail.domain.orders import to_tick
from tradetrail.domain.risk import EntryPrice, RiskInputs, RiskLimits, evaluate
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.trading.books import fill_deviation

ACCOUNT = RiskInputs(equity=100_000.0, cash=100_000.0, exposure=0.0, open_positions=0, position_qty=0.0,
                     day_start_equity=100_000.0, consecutive_losses=0)


# -- the gate ------------------------------------------------------------------------------------------------------

def test_a_market_entry_is_sized_from_the_last_price_plus_the_allowance_not_the_models_entry():
    # The model says entry 50 (nonsense); the market is at 100. Sizing price 100 × 1.02 = 102: risk per unit
    # 102 − 95 = 7 → floor(1,000 / 7) = 142 units by risk; 20 % of 100,000 at 102 → 196; cash → 980: 142.
    d = evaluate("BUY", 96.0, 95.0, 110.0, ACCOUNT, RiskLimits(), EntryPrice.market(100.0, 2.0))
    assert d.approved and d.quantity == 142
    n = d.numbers
    assert (n["order_type"], n["reference_price"], n["slippage_allowance_pct"]) == ("MKT", 100.0, 2.0)
    assert n["sizing_price"] == 102.0 and n["risk_per_unit"] == 7.0 and n["size_by_risk"] == 142
    assert n["reward_risk"] == 2.0  # (110 − 100) / (100 − 95): at the expected price
    assert n["entry"] == 96.0  # the model's entry is kept for the record, never used for the size


def test_every_cap_is_checked_at_the_sizing_price():
    # stop 99: 1,000 / (102 − 99) = 333 by risk; position cap floor(20,000 / 102) = 196 (at 100 it was 200).
    d = evaluate("BUY", 100.0, 99.0, 102.0, ACCOUNT, RiskLimits(), EntryPrice.market(100.0, 2.0))
    assert d.approved and d.quantity == 196 and d.numbers["capped_by"] == {"max_position_pct": 196}
    assert 196 * 102.0 <= 20_000 < 197 * 102.0
    # cash 5,000 with IBKR fixed commission: floor((5,000 − 1) / (102 + 0.005)) = 49
    poor = dataclasses.replace(ACCOUNT, cash=5_000.0, commission_per_unit=0.005, min_commission=1.0)
    d = evaluate("BUY", 100.0, 95.0, 110.0, poor, RiskLimits(), EntryPrice.market(100.0, 2.0))
    assert d.quantity == 49 and d.numbers["capped_by"] == {"cash": 49}
    # exposure: 70,000 held + 196 × 102 = 89,992 → 89.99 % (at the model's 100 it would read 89.60 %)
    held = dataclasses.replace(ACCOUNT, exposure=70_000.0)
    d = evaluate("BUY", 100.0, 99.0, 102.0, held, RiskLimits(), EntryPrice.market(100.0, 2.0))
    assert d.approved and d.numbers["exposure_after_pct"] == 89.99
    # 80,000 held: 196 × 102 more is 99.99 % > 90 %
    d = evaluate("BUY", 100.0, 99.0, 102.0, dataclasses.replace(ACCOUNT, exposure=80_000.0), RiskLimits(),
                 EntryPrice.market(100.0, 2.0))
    assert not d.approved and [x.rule for x in d.denials] == ["max_exposure"]
    assert d.denials[0].numbers == {"exposure_after_pct": 99.99}


def test_a_limit_entry_is_sized_at_its_limit():
    d = evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits(), EntryPrice.limit(100.0))
    assert d.approved and d.quantity == 200
    assert (d.numbers["order_type"], d.numbers["sizing_price"], d.numbers["reference_price"]) == ("LMT", 100.0, 100.0)
    assert evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits()).numbers == d.numbers  # the default


def test_the_reviewed_answer_is_denied_by_the_gate_too():
    """Even past the signal policy: entry 101.5 / stop 98 / target 108 with the market at 1,160 cannot buy."""
    d = evaluate("BUY", 101.5, 98.0, 108.0, ACCOUNT, RiskLimits(), EntryPrice.market(1160.0, 2.0))
    assert not d.approved and d.quantity == 0
    # the stop is far below: 1,000 / (1,183.2 − 98) rounds to zero units; the target is below the market
    assert {x.rule for x in d.denials} == {"min_reward_risk", "min_size"}


@pytest.mark.parametrize("price", [EntryPrice.market(None, 2.0), EntryPrice.market(math.nan, 2.0),
                                   EntryPrice.market(0.0, 2.0), EntryPrice.market(100.0, -1.0),
                                   EntryPrice.market(1e308, 100.0), EntryPrice("STP", 100.0)],
                         ids=["no-price", "nan", "zero", "negative-allowance", "overflow", "unknown-type"])
def test_no_usable_price_is_a_denial_naming_it(price):
    d = evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits(), price)
    assert not d.approved and d.quantity == 0 and d.denials[-1].rule == "sizing_price"


def test_a_stop_at_or_above_the_market_is_a_denial():
    d = evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits(), EntryPrice.market(94.0, 2.0))
    assert not d.approved and d.denials[-1].rule == "sizing_price"
    assert d.denials[-1].numbers == {"order_type": "MKT", "reference_price": 94.0, "stop": 95.0}


@pytest.mark.parametrize("price", [EntryPrice.market(1160.0, 2.0), EntryPrice.limit(1e308),
                                   EntryPrice.market(1e308, 50.0)], ids=["market", "limit-1e308", "market-1e308"])
def test_extreme_levels_are_denied_not_raised(price):
    d = evaluate("BUY", 1e308, 1e307, 1.7e308, ACCOUNT, RiskLimits(), price)
    assert not d.approved and d.quantity == 0 and d.denials


def test_to_tick_handles_the_whole_float_range_and_refuses_what_is_no_price():
    assert to_tick(1e308, 0.01, "nearest") == 1e308  # was decimal.InvalidOperation
    assert to_tick(1.7e308, 0.01, "up") == 1.7e308
    assert to_tick(1184.3008, 0.01, "down") == 1184.30
    for price in (math.inf, math.nan, -1.0, 0.0, 0.001):  # 0.001 rounds down to 0 on a 0.01 tick
        with pytest.raises(ValueError):
            to_tick(price, 0.01, "down")


# -- fills far from the sizing price -------------------------------------------------------------------------------

def _entry(order_type: str, sized: float, allowance: float) -> Order:
    return Order(client_order_id="tt-x-entry", leg="entry", side="BUY", order_type=order_type, sized_price=sized,
                 price_allowance_pct=allowance)


@pytest.mark.parametrize(("order_type", "sized", "fill", "direction"), [
    ("MKT", 102.0, 102.0, None), ("MKT", 102.0, 98.0, None), ("MKT", 102.0, 102.01, "above"),
    ("MKT", 102.0, 97.99, "below"), ("LMT", 100.0, 99.0, None), ("LMT", 100.0, 98.0, None),
    ("LMT", 100.0, 97.99, None), ("LMT", 100.0, 80.0, None), ("LMT", 100.0, 100.5, "above")])
def test_fill_deviation_band(order_type, sized, fill, direction):
    """MKT sized at 102 = last 100 + 2 %: fills in [98, 102] are inside; LMT 100: any fill at or below its
    limit is the order doing what it says (review: a limit filled at a better open was flagged "below")."""
    found = fill_deviation(_entry(order_type, sized, 2.0), fill)
    assert (found and found["direction"]) == direction
    if found:
        assert found["expected_price"] == 100.0 and found["sized_price"] == sized and found["fill_price"] == fill
        assert "PRICE DEVIATION" in found["detail"]


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def test_a_model_entry_below_the_market_cannot_carry_the_fill_past_the_position_cap(settings, fake):
    """The model's entry 1,114 is within a (wide) 10-ATR bound of the close 1,202.08. Sized at 1,114 the gate
    allowed 17 units; the MKT order filled at the next open, 1,202.68: 20,446 > 20 % of 100,000."""
    app = llm_app(settings, fake)
    user_id = llm_strategy(app, {"signal_policy": {"max_entry_distance_atr": 10.0}})
    fake.enqueue(Behaviour.ok({**VALID_BUY, "confidence": 80, "entry": 1114.0, "stop_loss": 1100.0,
                               "take_profit": 1320.0}),
                 Behaviour.ok({**VALID_BUY, "action": "HOLD", "entry": None, "stop_loss": None, "take_profit": None}))
    first = run(app, user_id)
    assert first["status"] == "succeeded", first["error"]
    risk = step(first, "risk_check")["output"]
    assert risk["approved"] is True
    assert risk["numbers"]["reference_price"] == FIRST_CLOSE
    assert risk["numbers"]["sizing_price"] == round(FIRST_CLOSE * 1.02, 6)
    second = run(app, user_id)  # the next session: the entry fills at its open and is booked
    assert second["status"] == "succeeded", second["error"]
    orders, _ = orders_and_events(app)
    entry = next(o for o in orders if o.leg == "entry")
    assert entry.state == "FILLED" and entry.sized_price == risk["numbers"]["sizing_price"]
    equity, cash = risk["numbers"]["equity"], risk["numbers"]["cash"]
    notional = entry.filled_quantity * entry.avg_fill_price
    assert notional <= equity * 0.20, f"{entry.filled_quantity:g} @ {entry.avg_fill_price:g} = {notional:,.2f}"
    assert entry.filled_quantity * (entry.avg_fill_price - 1100.0) <= equity * 0.01
    assert notional <= cash
    assert entry.risk_per_unit == pytest.approx(FIRST_CLOSE - 1100.0)  # 1 R at the expected price


@pytest.mark.parametrize(("changes", "flagged"), [
    ({"orders": {"slippage_allowance_pct": 0.0}}, True),  # MKT sized at the close; the fill pays 5 bps more
    ({}, False),  # the default 2 % allowance covers it
    ({"orders": {"entry_type": "LMT", "slippage_allowance_pct": 0.0}}, False),  # a limit never fills above
], ids=["mkt-no-allowance", "mkt-default-allowance", "lmt"])
def test_a_fill_beyond_the_allowance_is_recorded_on_the_order_and_in_lineage(app, changes, flagged):
    user_id, _ = demo(app)
    config = StrategyConfig.model_validate({**demo_config().to_json(), **{k: {**demo_config().to_json()[k], **v}
                                                                          for k, v in changes.items()}})
    with app.Session() as s:
        save_strategy(s, app, user_id, "demo", config)
        s.commit()
    first = run(app, user_id, "demo")  # 2005-01-03: the rules analyst buys at the close; the bracket is sent
    assert step(first, "place_order")["output"]["status"] == "accepted"
    second = run(app, user_id, "demo")  # 2005-01-04: its risk_check books the entry's fill
    synced = step(second, "risk_check")["metadata"]["synced"]
    orders, events = orders_and_events(app)
    entry = next(o for o in orders if o.leg == "entry")
    assert entry.state == "FILLED" and entry.sized_price is not None
    marks = [e for e in events if e.order_id == entry.id and e.detail.startswith("PRICE DEVIATION")]
    if not flagged:
        assert synced["price_deviations"] == [] and marks == []
        assert entry.avg_fill_price <= entry.sized_price
        return
    [deviation] = synced["price_deviations"]
    assert deviation["client_order_id"] == entry.client_order_id and deviation["direction"] == "above"
    assert deviation["expected_price"] == FIRST_CLOSE and deviation["allowance_pct"] == 0.0
    assert deviation["fill_price"] == entry.avg_fill_price > FIRST_CLOSE
    assert deviation["deviation_pct"] == pytest.approx((entry.avg_fill_price / FIRST_CLOSE - 1) * 100, abs=1e-4)
    [mark] = marks
    assert f"filled at {entry.avg_fill_price:g}" in mark.detail and "allowance 0%" in mark.detail
