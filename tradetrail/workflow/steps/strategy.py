"""load_strategy: the frozen strategy version this execution runs, its broker (a replay-clock strategy's is
the simulator) and its as-of time.

A version's configuration is validated once per process per distinct content (a version never changes; the
memo is keyed by the stored JSON, never by row ids, which can be reused): validation and the dump recorded
as the step's output were ~1 ms of every run. The validated model is shared and read-only by convention."""

from __future__ import annotations

import hashlib

from sqlalchemy import update

from tradetrail.catalogue import replay_clock as replay
from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.db.models import Execution, Strategy, StrategyVersion
from tradetrail.marketdata.port import MarketDataError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.jsonable import dumps
from tradetrail.workflow.memo import Memo

_configs = Memo(1024)


def _validated(raw: dict) -> tuple[StrategyConfig, dict]:
    """The configuration and its JSON dump; ValueError (never remembered) when it no longer validates."""
    config = StrategyConfig.model_validate(raw)
    return config, config.to_json()


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
            key = hashlib.sha256(dumps(version.config).encode()).hexdigest()
            ctx.config, config_json = _configs.get(key, lambda: _validated(version.config))
        except ValueError as exc:
            raise StepError(f"stored configuration no longer validates: {exc}", output=out) from exc
        start = ctx.config.market_data.replay_start
        if problem := ctx.config.replay_broker_problem():  # a version stored before the rule was checked
            raise StepError(problem, output=out)
        broker = ctx.config.broker_for(ctx.app.broker.name)
        if broker != ctx.app.broker.name:  # the strategy's own broker for every later step of this run
            ctx.app = ctx.app.with_broker(broker)
        if start is not None:
            source = ctx.app.market_data(ctx.config.market_data.source)
            try:
                with ctx.app.Session() as cache:  # the symbol cache, as resolve_contract uses it
                    contract = resolve_symbol(cache, source, ctx.config.symbol).contract
            except MarketDataError as exc:
                raise StepError(f"cannot resolve {ctx.config.symbol} at {source.name}: {exc}", output=out) from exc
            try:
                ctx.as_of, runs = replay.advance(s, strategy.id, source.sessions(contract), start)
            except replay.ReplayExhausted as exc:
                raise StepError(str(exc), output=out) from exc
            s.execute(update(Execution).where(Execution.id == ctx.execution_id).values(as_of=ctx.as_of))
            s.commit()
            out["replay"] = {"start": start.isoformat(), "run": runs, "as_of": ctx.as_of.isoformat()}
    return StepOutcome(output={**out, "as_of": ctx.as_of.isoformat(), "config": config_json})
