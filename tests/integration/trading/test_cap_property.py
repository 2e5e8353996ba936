"""Issue #11, the property: for any schema-valid model answer and any market, the notional at the fill price
never exceeds a cap (risk budget, position %, exposure, cash after commission) — always for LMT entries, and
for MKT entries whenever the fill is within the slippage allowance; a MKT fill beyond the allowance is always
flagged, on the order and in what the sync reports.

Each example is one real run of the pipeline: a random daily bar series (drift, volatility, and a gap of any
size into the next session) written as a CSV for the ``files`` market data, the model's answer served by the
fake OpenAI-compatible server, the real signal policy, risk gate and order manager, and the real simulated
broker filling the next bar; then the fill is booked by the real sync. Every example has its own user (so
its own account), symbol and strategy. The number of examples is bounded so this takes seconds.
"""

from __future__ import annotations

import os
from datetime import timedelta
from itertools import count

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.helpers import demo
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.db.trading_models import Fill, Order, OrderEvent
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import ensure_user
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.trading.reconcile import sync_account

BARS = 300  # the last one is the session after the run: the one the entry fills in
EXAMPLES = 30


def _bars(seed: int, start: float, vol: float, drift: float, gap: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(drift, vol, BARS)))
    open_ = np.r_[start, close[:-1]] * (1 + rng.normal(0, vol / 4, BARS))
    open_[-1] = close[-2] * (1 + gap)  # the gap into the session the entry fills in
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, BARS)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, BARS)))
    dates = pd.bdate_range(end="2019-12-31", periods=BARS)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "open": open_.round(4), "high": high.round(4),
                         "low": low.round(4), "close": close.round(4), "volume": 1_000_000})


# A few fixed histories (their charts come from the render cache after the first use) and any other.
# (A fixed history keeps its symbol, so the drawn chart is the same; only the session after the run differs.)
HISTORIES = [{"seed": seed, "start": start, "vol": vol, "drift": drift} for seed, start, vol, drift in
             [(1, 12.5, 0.03, 0.001), (2, 250.0, 0.01, 0.0), (3, 1800.0, 0.015, -0.001), (4, 4200.0, 0.005, 0.0005),
              (7, 1000.0, 0.01, 0.0005)]]


@st.composite
def markets(draw) -> dict:
    gap = draw(st.one_of(st.just(0.0), st.floats(-0.03, 0.03), st.floats(-0.3, 0.3), st.sampled_from(
        [0.0195, 0.0201, 0.021, 0.05, -0.0201])))
    history = draw(st.one_of(st.sampled_from(HISTORIES), st.fixed_dictionaries({
        "seed": st.integers(0, 2**32 - 1), "start": st.floats(5.0, 5_000.0), "vol": st.floats(0.002, 0.04),
        "drift": st.floats(-0.002, 0.002)})))
    return {**history, "gap": gap}


@st.composite
def answers(draw) -> dict:
    """Schema-valid answers, as fractions of the last close (``near``) or as absolute prices (``anywhere``)."""
    action = draw(st.sampled_from(["BUY"] * 8 + ["SELL", "HOLD"]))
    spec = {"action": action, "confidence": draw(st.integers(0, 100))}
    if action == "HOLD":
        return spec
    if draw(st.integers(0, 7)) == 0:
        return {**spec, "anywhere": sorted(draw(st.lists(st.floats(0.01, 1e7), min_size=3, max_size=3,
                                                           unique=True)))}
    s, t = draw(st.floats(0.002, 0.3)), draw(st.floats(0.002, 1.0))
    e = draw(st.one_of(st.just(0.0), st.floats(-0.2 * s, 0.2 * t), st.floats(-0.9 * s, 0.9 * t)))
    return {**spec, "stop": -s, "entry": e, "target": t}


def materialize(spec: dict, close: float) -> dict:
    """The model's answer for a market that last closed at ``close``; schema-valid by construction."""
    answer = {"action": spec["action"], "confidence": spec["confidence"], "trend": "bullish",
              "key_factors": ["property"], "reasoning": "generated", "entry": None, "stop_loss": None,
              "take_profit": None}
    if spec["action"] != "HOLD":
        levels = spec.get("anywhere") or [close * (1 + spec[k]) for k in ("stop", "entry", "target")]
        stop, entry, target = levels if spec["action"] == "BUY" else levels[::-1]
        answer.update(entry=entry, stop_loss=stop, take_profit=target)
    AnalystAnswer.model_validate(answer)
    return answer


@st.composite
def configs(draw) -> dict:
    allowance = draw(st.one_of(st.just(0.0), st.just(2.0), st.floats(0.0, 5.0), st.floats(0.0, 50.0)))
    return {
        "orders": {"entry_type": draw(st.sampled_from(["MKT", "MKT", "LMT"])), "slippage_allowance_pct": allowance},
        "risk": {"risk_per_trade_pct": draw(st.one_of(st.floats(0.5, 5.0), st.floats(0.01, 5.0))),
                 "max_position_pct": draw(st.one_of(st.floats(5.0, 100.0), st.floats(0.1, 100.0))),
                 "max_exposure_pct": draw(st.one_of(st.floats(5.0, 100.0), st.floats(1.0, 100.0))),
                 "min_reward_risk": draw(st.one_of(st.floats(0.1, 1.0), st.floats(0.1, 3.0)))},
        "signal_policy": {"min_confidence": 0, "require_confirmation": False, "min_reward_risk": 0.1,
                          "max_entry_distance_atr": draw(st.floats(0.1, 10.0))},
    }


CALM = {**HISTORIES[-1], "gap": 0.0}
FRIENDLY = {"orders": {"entry_type": "MKT", "slippage_allowance_pct": 2.0},
            "risk": {"risk_per_trade_pct": 1.0, "max_position_pct": 20.0, "max_exposure_pct": 90.0,
                     "min_reward_risk": 1.0},
            "signal_policy": {"min_confidence": 0, "require_confirmation": False, "min_reward_risk": 0.1,
                              "max_entry_distance_atr": 1.0}}
BUY_AT_CLOSE = {"action": "BUY", "confidence": 80, "stop": -0.03, "entry": 0.0, "target": 0.09}


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


@pytest.mark.once  # sizing and fills are the same on either backend
def test_the_notional_at_the_fill_price_never_exceeds_a_cap(settings: Settings, fake, tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    app = build_app(Settings(home=settings.home, database_url=settings.database_url, market_data="files",
                             market_data_dir=folder, llm_base_url=fake.base_url, llm_api_key="sk-test",
                             llm_model="fake-vision", llm_backoff_s=0.01), migrate=False)
    demo(app)  # the prompt templates
    numbers = count(1)
    seen = {"filled_within": 0, "flagged": 0, "lmt_filled": 0, "approved": 0}

    @hsettings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))
    @given(market=markets(), config=configs(), spec=answers())
    @example(market=CALM, config=FRIENDLY, spec=BUY_AT_CLOSE)  # a MKT fill within the allowance
    @example(market=CALM, config=FRIENDLY | {"orders": {"entry_type": "LMT", "slippage_allowance_pct": 2.0}},
             spec=BUY_AT_CLOSE)  # a limit fill
    @example(market=CALM | {"gap": 0.05}, config=FRIENDLY, spec=BUY_AT_CLOSE)  # a gap past the allowance
    @example(market=CALM | {"gap": -0.25}, config=FRIENDLY, spec=BUY_AT_CLOSE)  # a gap the other way
    def check(market: dict, config: dict, spec: dict) -> None:
        n = next(numbers)
        history = {k: market[k] for k in ("seed", "start", "vol", "drift")}
        symbol = f"H{HISTORIES.index(history)}" if history in HISTORIES else f"P{n}"
        bars = _bars(**market)
        bars.to_csv(folder / "next.csv", index=False)
        os.replace(folder / "next.csv", folder / f"{symbol}.csv")  # a new file: the adapter reads it again
        answer = materialize(spec, float(bars["close"].iloc[-2]))
        user_id = ensure_user(app, f"prop{n}")
        strategy = StrategyConfig.model_validate({
            "symbol": symbol, "analyst": {"kind": "llm"}, "charts": {"daily_bars": 20, "weekly_bars": 20},
            "market_data": {"source": "files", "replay_start": bars["date"].iloc[-2], "confirmation_timeframe": None},
            **config})
        with app.Session() as s:
            save_strategy(s, app, user_id, "prop", strategy)
            s.commit()
        asked = len(fake.chat_requests)
        fake.enqueue(Behaviour.ok(answer))
        execution = get_execution(app, run_strategy(app, user_id, "prop").execution_id)
        if len(fake.chat_requests) == asked:
            fake.next_behaviour()  # never asked: drop its answer so the next example gets its own
        assert execution["status"] == "succeeded", execution["error"]  # any schema-valid answer: no crash
        risk = _step(execution, "risk_check")
        if not risk["output"]["approved"] or risk["output"]["action"] != "enter":
            return
        seen["approved"] += 1
        account = risk["input"]["account"]  # the strategy's own (a replay-clock strategy's)
        next_session = pd.Timestamp(bars["date"].iloc[-1]).tz_localize("UTC") + timedelta(days=1)
        app.broker.sync(account, next_session.to_pydatetime())
        synced = sync_account(app, user_id, account)
        with app.Session() as s:
            entry = s.scalar(select(Order).where(Order.account == account, Order.leg == "entry"))
            fills = s.scalars(select(Fill).where(Fill.order_id == entry.id)).all()
            events = [e.detail for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == entry.id)
                                                  .order_by(OrderEvent.id))]
        if not fills:
            return  # a limit the next session never reached: nothing traded
        inputs, nums = risk["input"]["inputs"], risk["output"]["numbers"]
        limits = strategy.risk
        qty = sum(f.quantity for f in fills)
        price = sum(f.quantity * f.price for f in fills) / qty
        fee = sum(f.commission for f in fills)
        equity, sized = inputs["equity"], nums["sizing_price"]
        assert qty == risk["output"]["quantity"] and entry.sized_price == sized
        within = price <= sized * (1 + 1e-12)
        if strategy.orders.entry_type == "LMT":
            seen["lmt_filled"] += 1
            assert within, f"a limit order filled at {price} above its limit {sized}"
        if not within:  # a MKT gap beyond the allowance: never silent
            seen["flagged"] += 1
            flagged = [d for d in synced["price_deviations"] if d["client_order_id"] == entry.client_order_id]
            assert flagged and flagged[0]["direction"] == "above" and flagged[0]["fill_price"] == price
            assert any(e.startswith("PRICE DEVIATION") for e in events), events
            return
        seen["filled_within"] += 1
        notional = qty * price
        slack = 1 + 1e-9
        assert qty * (price - nums["stop"]) <= equity * limits.risk_per_trade_pct / 100 * slack
        assert notional <= equity * limits.max_position_pct / 100 * slack
        assert inputs["exposure"] + notional <= equity * limits.max_exposure_pct / 100 * slack
        assert notional + fee <= inputs["cash"] * slack

    check()
    # the property was exercised, not skipped: entries filled inside the allowance, limits filled, gaps flagged
    assert seen["filled_within"] >= 3 and seen["lmt_filled"] >= 1 and seen["flagged"] >= 1, seen
