"""decide_signal: the analyst's proposal under the strategy's signal policy; HOLD is recorded with its reason.

The levels are checked against the primary (daily) timeframe's last close and ATR (the ``market_fit`` rule),
so an answer whose prices belong to another market, or to no market, never becomes a signal."""

from __future__ import annotations

from sqlalchemy import insert

from tradetrail.db.models import Signal
from tradetrail.domain.records import as_dict
from tradetrail.notify import outbox
from tradetrail.trading.decisions import market_of, proposal_of, signal_decision
from tradetrail.workflow.context import RunContext, StepOutcome

PRIMARY = "daily"


_INSERT = insert(Signal.__table__)


def decide_signal(ctx: RunContext) -> StepOutcome:
    answer = ctx.analysis.answer
    policy = ctx.config.signal_policy
    primary = ctx.confirmation.get(PRIMARY)
    higher = ctx.confirmation.get("weekly")
    latest = ctx.latest.get(PRIMARY) or {}
    ctx.step_input.update(proposal=proposal_of(answer), policy=policy, market=market_of(latest),
                          confirmation={"daily": primary.direction if primary else None,
                                        "weekly": higher.direction if higher else None})
    decision = signal_decision(ctx.config, answer, primary, higher, latest)
    ctx.signal = decision
    with ctx.app.engine.begin() as conn:  # a plain insert: the row is not read back
        conn.execute(_INSERT, dict(execution_id=ctx.execution_id, strategy_id=ctx.strategy_id,
                                   symbol=ctx.contract.symbol, action=decision.action, confidence=decision.confidence,
                                   entry=decision.entry, stop_loss=decision.stop_loss,
                                   take_profit=decision.take_profit, reward_risk=_finite(decision.reward_risk),
                                   reasons=[as_dict(r) for r in decision.rules], policy=as_dict(policy)))
        if decision.action in ("BUY", "SELL") and not outbox.quiet(ctx.trigger):  # with the signal row
            outbox.event_conn(conn, ctx.user_id, "signal", _signal_text(ctx, decision),
                              f"/executions/{ctx.execution_id}")
    return StepOutcome(output=decision.to_dict())


def _signal_text(ctx: RunContext, d) -> str:
    levels = ", ".join(f"{name} {value:g}" for name, value in (("entry", d.entry), ("stop", d.stop_loss),
                                                                ("target", d.take_profit)) if value is not None)
    return f"Signal {d.action} {ctx.contract.symbol} (strategy {ctx.strategy_name}, confidence " \
           f"{d.confidence if d.confidence is not None else '?'})" + (f": {levels}" if levels else "")


def _finite(value: float | None) -> float | None:
    """An overflowed ratio (a stop a hair from the entry) is stored as missing, not as infinity."""
    return value if value is None or abs(value) != float("inf") else None
