"""decide_signal: the analyst's proposal under the strategy's signal policy; HOLD is recorded with its reason."""

from __future__ import annotations

from tradetrail.db.models import Signal
from tradetrail.domain.signal_policy import Proposal, decide
from tradetrail.workflow.context import RunContext, StepOutcome


def decide_signal(ctx: RunContext) -> StepOutcome:
    answer = ctx.analysis.answer
    policy = ctx.config.signal_policy
    primary = ctx.confirmation.get("daily")
    higher = ctx.confirmation.get("weekly")
    proposal = Proposal(answer.action, answer.confidence, answer.entry, answer.stop_loss, answer.take_profit)
    ctx.step_input.update(proposal=proposal, policy=policy,
                          confirmation={"daily": primary.direction if primary else None,
                                        "weekly": higher.direction if higher else None})
    decision = decide(proposal, primary.direction if primary else None, higher.direction if higher else None,
                      policy)
    ctx.signal = decision
    with ctx.app.Session() as s:
        s.add(Signal(execution_id=ctx.execution_id, strategy_id=ctx.strategy_id, symbol=ctx.contract.symbol,
                     action=decision.action, confidence=decision.confidence, entry=decision.entry,
                     stop_loss=decision.stop_loss, take_profit=decision.take_profit,
                     reward_risk=decision.reward_risk, reasons=[r.__dict__ for r in decision.rules],
                     policy=policy.__dict__))
        s.commit()
    return StepOutcome(output=decision.to_dict())
