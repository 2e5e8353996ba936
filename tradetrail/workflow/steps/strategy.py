"""load_strategy: the frozen strategy version this execution runs, its broker (a replay-clock strategy's is
the simulator) and its as-of time.

A version's configuration is validated once per process per distinct content (a version never changes; the
memo is keyed by the stored JSON, never by row ids, which can be reused): validation and the dump recorded
as the step's output were ~1 ms of every run. The validated model is shared and read-only by convention."""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, select, update

from tradetrail.catalogue import replay_clock as replay
from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.db.models import Execution, Strategy, StrategyVersion
from tradetrail.marketdata.port import MarketDataError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.jsonable import dumps
from tradetrail.workflow.memo import Memo

_configs = Memo(1024)
_S, _V, _E = Strategy.__table__, StrategyVersion.__table__, Execution.__table__
# Built once (every run loads): the strategy's and its version's rows in one statement, none if either is gone.
_LOAD = (select(_S.c.name, _S.c.enabled, _V.c.version, _V.c.config)
         .select_from(_S.join(_V, _V.c.strategy_id == _S.c.id))
         .where(_S.c.id == bindparam("strategy"), _V.c.id == bindparam("version")))
_SET_AS_OF = update(_E).where(_E.c.id == bindparam("execution")).values(as_of=bindparam("as_of"))


def _validated(raw: dict) -> tuple[StrategyConfig, dict]:
    """The configuration and its JSON dump; ValueError (never remembered) when it no longer validates."""
    config = StrategyConfig.model_validate(raw)
    return config, config.to_json()


def load_strategy(ctx: RunContext) -> StepOutcome:
    ctx.step_input.update(strategy_id=ctx.strategy_id, strategy_version_id=ctx.strategy_version_id)
    with ctx.app.Session() as s:
        row = s.execute(_LOAD, {"strategy": ctx.strategy_id, "version": ctx.strategy_version_id}).first()
        if row is None:
            raise StepError("the strategy or its version no longer exists")
        ctx.strategy_name = row.name
        out = {"name": row.name, "version": row.version, "enabled": row.enabled}
        if not row.enabled:
            return StepOutcome(output={**out, "reason": "strategy is disabled"}, status="skipped", halt=True)
        try:
            key = hashlib.sha256(dumps(row.config).encode()).hexdigest()
            ctx.config, config_json = _configs.get(key, lambda: _validated(row.config))
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
                ctx.as_of, runs = replay.advance(s, ctx.strategy_id, source.sessions(contract), start, commit=False)
            except replay.ReplayExhausted as exc:
                raise StepError(str(exc), output=out) from exc
            s.execute(_SET_AS_OF, {"execution": ctx.execution_id, "as_of": ctx.as_of})
            s.commit()  # the clock's move and the run's as-of together
            out["replay"] = {"start": start.isoformat(), "run": runs, "as_of": ctx.as_of.isoformat()}
    return StepOutcome(output={**out, "as_of": ctx.as_of.isoformat(), "config": config_json})
