"""Strategies: CRUD (every change is a new version), validate, enable/pause, run now, next run times."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from tradetrail.api.deps import AppDep, Limit, Offset, StrategyName, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.schemas import (
    NextRunsOut,
    Page,
    RunOut,
    StrategyIn,
    StrategyOut,
    StrategyUpdateIn,
    ValidateIn,
    ValidateOut,
    page,
)
from tradetrail.services.runs.run_now import start_run
from tradetrail.services.strategies import configs as svc

router = APIRouter(prefix="/api/strategies", tags=["strategies"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[StrategyOut])
def list_strategies(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0) -> dict:
    return page(svc.list_strategies(app, user.user_id, limit=limit + 1, offset=offset), limit, offset)


@router.post("", response_model=StrategyOut, status_code=201)
def create(body: StrategyIn, app: AppDep, user: UserDep) -> dict:
    return svc.create_strategy(app, user.user_id, body.name, body.config, enabled=body.enabled)


@router.post("/validate", response_model=ValidateOut)
def validate(body: ValidateIn, app: AppDep, user: UserDep) -> dict:
    """Checks that need the database or a source (the symbol, the prompts); field checks happen on parsing."""
    problems = svc.validate_config(app, user.user_id, body.config)
    return {"valid": not problems, "problems": problems}


@router.get("/{name}", response_model=StrategyOut)
def detail(name: StrategyName, app: AppDep, user: UserDep) -> dict:
    return svc.strategy_detail(app, user.user_id, name)


@router.put("/{name}", response_model=StrategyOut)
def update(name: StrategyName, body: StrategyUpdateIn, app: AppDep, user: UserDep) -> dict:
    return svc.update_strategy(app, user.user_id, name, body.config)


@router.delete("/{name}", status_code=204)
def delete(name: StrategyName, app: AppDep, user: UserDep) -> Response:
    svc.delete_strategy(app, user.user_id, name)
    return Response(status_code=204)


@router.post("/{name}/enable", response_model=StrategyOut)
def enable(name: StrategyName, app: AppDep, user: UserDep) -> dict:
    return svc.set_enabled(app, user.user_id, name, True)


@router.post("/{name}/pause", response_model=StrategyOut)
def pause(name: StrategyName, app: AppDep, user: UserDep) -> dict:
    return svc.set_enabled(app, user.user_id, name, False)


@router.post("/{name}/run", response_model=RunOut, status_code=202)
def run(name: StrategyName, app: AppDep, user: UserDep) -> dict:
    """Start an execution now; answers with its id as soon as it exists (poll the lineage URL)."""
    execution_id = start_run(app, user.user_id, name)
    return {"execution_id": execution_id, "status_url": f"/api/lineage/execution/{execution_id}"}


@router.get("/{name}/next-runs", response_model=NextRunsOut)
def next_runs(name: StrategyName, app: AppDep, user: UserDep,
              count: Annotated[int, Query(ge=1, le=500)] = 10) -> dict:
    return svc.next_runs(app, user.user_id, name, count)
