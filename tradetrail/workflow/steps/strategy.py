"""load_strategy: the frozen strategy version this execution runs, and its as-of time."""

from __future__ import annotations

from sqlalchemy import update

from tradetrail.db.models import Execution, Strategy, StrategyVersion
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services import replay
from tradetrail.workflow.context import RunContext, StepError, StepOutcome


def load_strategy(ctx: RunContext) -> StepOutcome:
    ctx.step_input.update(strategy_id=ctx.strategy_id, strategy_version_id=ctx.strategy_version_id)
    with ctx.app.Session() as s:
        strategy = s.get(Strategy, ctx.strategy_id)
        version = s.get(StrategyVersion, ctx.strategy_version_id)
        if strategy is None or version is None:
            raise StepError("the strategy or its version no longer exists")
        ctx.strategy_name = strategy.name
        out = {"name": strategy.name, "version": version.version, "enabled": strategy.enabled}
        if not strategy.enabled:
            return StepOutcome(output={**out, "reason": "strategy is disabled"}, status="skipped", halt=True)
        try:
            ctx.config = StrategyConfig.model_validate(version.config)
        except ValueError as exc:
            raise StepError(f"stored configuration no longer validates: {exc}", output=out) from exc
        if ctx.config.broker:  # the strategy's own broker for every later step of this run
            ctx.app = ctx.app.with_broker(ctx.config.broker)
        start = ctx.config.market_data.replay_start
        if start is not None:
            source = ctx.app.market_data(ctx.config.market_data.source)
            contract = source.resolve(ctx.config.symbol)
            try:
                ctx.as_of, runs = replay.advance(s, strategy.id, source.sessions(contract), start)
            except replay.ReplayExhausted as exc:
                raise StepError(str(exc), output=out) from exc
            s.execute(update(Execution).where(Execution.id == ctx.execution_id).values(as_of=ctx.as_of))
            s.commit()
            out["replay"] = {"start": start.isoformat(), "run": runs, "as_of": ctx.as_of.isoformat()}
    return StepOutcome(output={**out, "as_of": ctx.as_of.isoformat(), "config": ctx.config.to_json()})
