"""The decision glue between an analyst's answer and the orders: pure functions (no database, no broker).

The workflow steps (decide_signal, risk_check, place_order) and the backtest call these same functions, so a
backtest decides exactly as a live run would: the signal under the strategy's policy, the levels on the tick
and the price a BUY trades at, the risk gate, and the orders that carry the decision out.

``orders.protective`` decides what an entry is: ``bracket`` (the default) an entry with its protective stop
and take-profit, ``none`` a single order whose position only a SELL signal closes (no stop or target is
checked, put on the tick or sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side, bracket, client_order_id, to_tick
from tradetrail.domain.risk import Denial, EntryPrice, RiskDecision, RiskInputs, evaluate
from tradetrail.domain.signal_policy import Market, Proposal, SignalDecision, decide

if TYPE_CHECKING:
    from tradetrail.analyst.schema import AnalystAnswer
    from tradetrail.domain.confirmation import Confirmation
    from tradetrail.schemas.strategy import StrategyConfig

LEVELS = ("entry", "stop_loss", "take_profit")


@dataclass(frozen=True)
class EntryPlan:
    """What risk_check passes on: the levels on the tick, the price a BUY trades at, and why the levels cannot
    be put on the tick (None when they can)."""

    levels: dict  # {"entry", "stop_loss", "take_profit"} on the tick (None where absent)
    price: EntryPrice | None
    problem: str | None


def proposal_of(answer: AnalystAnswer) -> Proposal:
    """The analyst's answer as the signal policy reads it."""
    return Proposal(answer.action, answer.confidence, answer.entry, answer.stop_loss, answer.take_profit)


def market_of(latest_primary: dict) -> Market:
    """The primary timeframe's last close and ATR (the levels must fit them)."""
    return Market(close=latest_primary.get("close"), atr=latest_primary.get("atr"))


def signal_decision(config: StrategyConfig, answer: AnalystAnswer, primary: Confirmation | None,
                    higher: Confirmation | None, latest_primary: dict) -> SignalDecision:
    """The analyst's proposal under the strategy's signal policy (HOLD with the first failing rule)."""
    return decide(proposal_of(answer), primary.direction if primary else None, higher.direction if higher else None,
                  config.signal_policy, market_of(latest_primary), protective=_protective(config))


def _protective(config: StrategyConfig) -> bool:
    return config.orders.protective == "bracket"


def entry_plan(config: StrategyConfig, signal: SignalDecision, last_close: float | None) -> EntryPlan:
    """The levels as the broker will see them and what a BUY trades at: a MKT entry at ``last_close`` (the last
    close of the run's bars) plus the slippage allowance, a LMT entry at its limit on the tick."""
    orders = config.orders
    levels, problem = _on_tick(signal, orders.tick_size, orders.entry_type, _protective(config))
    if orders.entry_type == "LMT":
        price = EntryPrice.limit(levels["entry"])
    else:
        price = EntryPrice.market(last_close, orders.slippage_allowance_pct)
    return EntryPlan(levels, price, problem)


def _on_tick(sig: SignalDecision, tick: float, entry_type: str, protective: bool) -> tuple[dict, str | None]:
    """The levels on the tick grid (a long's stop and a buy limit down, its target up), or why they cannot be.
    Without protective orders a BUY has only its entry (a stop or target the analyst gave is never sent)."""
    raw = {"entry": sig.entry, "stop_loss": sig.stop_loss, "take_profit": sig.take_profit}
    if not protective and sig.action == "BUY":
        raw = {"entry": sig.entry, "stop_loss": None, "take_profit": None}
    if sig.action != "BUY" or None in (raw.values() if protective else (sig.entry,)):
        return raw, None
    try:
        entry = to_tick(sig.entry, tick, "down" if entry_type == "LMT" else "nearest")
        if not protective:
            return {"entry": entry, "stop_loss": None, "take_profit": None}, None
        return {"entry": entry, "stop_loss": to_tick(sig.stop_loss, tick, "down"),
                "take_profit": to_tick(sig.take_profit, tick, "up")}, None
    except ValueError as exc:
        return dict.fromkeys(LEVELS), f"the levels cannot be put on the tick: {exc}"


def risk_decision(config: StrategyConfig, signal: SignalDecision, plan: EntryPlan, inputs: RiskInputs) -> RiskDecision:
    """The risk gate on ``inputs``: a denial for levels that cannot be put on the tick, else :func:`evaluate`."""
    if plan.problem:
        denial = Denial("levels", plan.problem, {"entry": signal.entry, "stop": signal.stop_loss,
                                                 "target": signal.take_profit, "tick_size": config.orders.tick_size})
        return RiskDecision("enter", False, 0, f"levels: {plan.problem}", (denial,))
    lv = plan.levels
    return evaluate(signal.action, lv["entry"], lv["stop_loss"], lv["take_profit"], inputs, config.risk, plan.price,
                    protective=_protective(config))


def entry_orders(config: StrategyConfig, execution_id: str, decision: RiskDecision, plan: EntryPlan) -> list[OrderSpec]:
    """The approved entry as orders: the entry with its protective stop and take-profit children, or the entry
    alone without protective orders."""
    cfg, lv = config.orders, plan.levels
    if not _protective(config):
        entry_type = OrderType(cfg.entry_type)
        return [OrderSpec(client_order_id(execution_id, Leg.ENTRY), Leg.ENTRY, Side.BUY, entry_type, decision.quantity,
                          limit_price=lv["entry"] if entry_type == OrderType.LMT else None, tif=cfg.entry_tif)]
    return bracket(execution_id, Side.BUY, decision.quantity, entry_type=OrderType(cfg.entry_type),
                   entry_price=lv["entry"], stop_price=lv["stop_loss"], target_price=lv["take_profit"],
                   tif=cfg.entry_tif, child_tif=cfg.exit_tif)


def exit_orders(execution_id: str, quantity: float) -> list[OrderSpec]:
    """Closing the position: one market SELL of ``quantity`` for the day."""
    return [OrderSpec(client_order_id(execution_id, Leg.EXIT), Leg.EXIT, Side.SELL, OrderType.MKT, quantity,
                      tif="DAY")]
