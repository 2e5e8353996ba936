"""Executions and their steps: recent runs, one run, one step, per-step statistics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from tradetrail.api.deps import AppDep, ExecutionId, Offset, StrategyName, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.schemas import ExecutionOut, ExecutionSummary, OneStepOut, Page, StepStatsOut, page
from tradetrail.services.runs import lineage as svc
from tradetrail.services.runs.executions import get_execution

router = APIRouter(prefix="/api/lineage", tags=["lineage"], responses=ERROR_RESPONSES)
Status = Literal["running", "succeeded", "failed", "skipped"]
RecentLimit = Annotated[int, Query(ge=1, le=100, description="at most 100, newest first")]
StrategyFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


@router.get("/recent", response_model=Page[ExecutionSummary])
def recent(app: AppDep, user: UserDep, limit: RecentLimit = 20, offset: Offset = 0,
           strategy: StrategyFilter = None, status: Status | None = None) -> dict:
    """Your executions, newest first."""
    rows = svc.recent(app, user.user_id, strategy=strategy, status=status, limit=limit + 1, offset=offset)
    return page(rows, limit, offset)


@router.get("/execution/{execution_id}", response_model=ExecutionOut)
def execution(execution_id: ExecutionId, app: AppDep, user: UserDep) -> dict:
    """One execution with every step in order and ``has_errors``."""
    return get_execution(app, execution_id, user_id=user.user_id)


@router.get("/execution/{execution_id}/steps/{number}", response_model=OneStepOut)
def step(execution_id: ExecutionId, number: Annotated[int, Path(ge=1, le=1000)], app: AppDep,
         user: UserDep) -> dict:
    return svc.step(app, user.user_id, execution_id, number)


@router.get("/strategy/{name}", response_model=list[ExecutionSummary])
def strategy_recent(name: StrategyName, app: AppDep, user: UserDep, limit: RecentLimit = 20) -> list[dict]:
    """One strategy's executions, newest first (at most 100)."""
    return svc.recent(app, user.user_id, strategy=name, limit=limit)


@router.get("/stats", response_model=StepStatsOut)
def stats(app: AppDep, user: UserDep, strategy: StrategyFilter = None,
          last: Annotated[int, Query(ge=1, le=10_000, description="over this many recent executions")] = 1000
          ) -> dict:
    """Per step: counts by status, success rate, durations and the most common errors."""
    return svc.step_stats(app, user.user_id, strategy=strategy, last=last)


@router.post("/execution/{execution_id}/replay", response_model=ExecutionOut, status_code=201)
def replay(execution_id: ExecutionId, app: AppDep, user: UserDep) -> dict:
    """Re-run an execution from its stored bars, prompt versions and cached answer (never a model call, never
    an order) and compare the signal with the original's: see the last step, ``compare_with_original``."""
    from tradetrail.services.runs.executions import replay_execution

    return replay_execution(app, user.user_id, execution_id)
