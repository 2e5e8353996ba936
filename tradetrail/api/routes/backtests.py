"""Backtests: start one in the background, follow its progress, read its report, chart and artifacts."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, field_validator

from tradetrail.api.deps import AppDep, Limit, Offset, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.schemas import Page, page
from tradetrail.schemas.inputs import _In
from tradetrail.schemas.strategy import NAME_PATTERN
from tradetrail.services.backtests import queries as svc
from tradetrail.services.backtests.model_analyst import DEFAULT_MAX_CALLS, MAX_CALLS_LIMIT
from tradetrail.services.backtests.running import MAX_CASH, BacktestRequest, start_backtest
from tradetrail.services.backtests.sessions import rerun_session

router = APIRouter(prefix="/api/backtests", tags=["backtests"], responses=ERROR_RESPONSES)
BacktestId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$",
                                 description="backtest id (its execution's id)")]


class BacktestIn(_In):
    strategy: str = Field(pattern=NAME_PATTERN)
    start: date = Field(alias="from", strict=False, description="first session, YYYY-MM-DD")
    end: date = Field(alias="to", strict=False, description="last session, YYYY-MM-DD")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        """A date written YYYY-MM-DD: not a timestamp number or a datetime."""
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return value
        raise ValueError(f"must be a date written YYYY-MM-DD, got {str(value)[:40]!r}")
    cash: float | None = Field(default=None, gt=0, le=MAX_CASH, description="starting cash (default "
                                                                            "TRADETRAIL_SIM_INITIAL_CASH)")
    analyst: Literal["cached", "model"] = Field(
        default="cached", description="a strategy whose analyst is the model: cached answers only (sessions without "
                                      "one are HOLD and listed in the report's analysis), or model: the sessions "
                                      "without one are asked of the model (counted first: params.plan) and cached; "
                                      "another analyst takes only cached")
    max_calls: int | None = Field(default=None, ge=1, le=MAX_CALLS_LIMIT,
                                  description=f"analyst model: the backtest fails, asking nothing, when more "
                                              f"sessions need a model call (default {DEFAULT_MAX_CALLS})")


class BacktestStarted(BaseModel):
    id: str
    status_url: str


class SessionRerun(BaseModel):
    execution_id: str
    lineage_url: str


class BacktestOut(BaseModel):
    id: str
    strategy: str
    status: str = Field(description="queued | running | succeeded | failed")
    from_: str = Field(alias="from")
    to: str
    initial_cash: float
    params: dict[str, Any]
    grid_id: str | None
    progress: dict[str, int] = Field(description="sessions through the loop: done of total")
    created_at: str
    finished_at: str | None
    error: str | None
    data_sha256: str | None
    summary: dict[str, Any] | None
    report: dict[str, Any] | None = None
    artifacts: dict[str, str] | None = None


@router.post("", response_model=BacktestStarted, status_code=202)
def start(body: BacktestIn, app: AppDep, user: UserDep) -> dict:
    """Starts the backtest in the background; follow it at ``status_url`` (``progress``, then ``report``). With the
    model analyst, ``params.plan`` shows the sessions found in the cache and the model calls to make before any is
    made, and ``report.analysis`` what was cached, asked, missing and failed."""
    backtest_id = start_backtest(app, user.user_id, BacktestRequest(body.strategy, body.start, body.end, body.cash,
                                                                    analyst=body.analyst, max_calls=body.max_calls))
    return {"id": backtest_id, "status_url": f"/api/backtests/{backtest_id}"}


@router.get("", response_model=Page[BacktestOut], response_model_by_alias=True)
def list_backtests(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0,
                   strategy: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None) -> dict:
    return page(svc.list_backtests(app, user.user_id, strategy=strategy, limit=limit + 1, offset=offset), limit,
                offset)


@router.get("/{backtest_id}", response_model=BacktestOut, response_model_by_alias=True)
def detail(backtest_id: BacktestId, app: AppDep, user: UserDep) -> dict:
    return svc.get_backtest(app, user.user_id, backtest_id)


@router.get("/{backtest_id}/chart.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "equity and drawdown"}})
def chart(backtest_id: BacktestId, app: AppDep, user: UserDep) -> Response:
    return Response(svc.chart_png(app, user.user_id, backtest_id), media_type="image/png")


@router.post("/{backtest_id}/sessions/{session}/rerun", response_model=SessionRerun)
def rerun(backtest_id: BacktestId, session: Annotated[date, Path(description="a tested session, YYYY-MM-DD")],
          app: AppDep, user: UserDep) -> dict:
    """The decision of one tested session re-run through the 13 steps of a live run, from the backtest's stored
    inputs, on a simulated account of its own (asking again returns the same execution)."""
    execution_id = rerun_session(app, user.user_id, backtest_id, session)
    return {"execution_id": execution_id, "lineage_url": f"/api/lineage/execution/{execution_id}"}
