"""The symbol cache: search, contract details by conid, batch caching, refresh of stale rows, statistics.

Lookups go to the server's configured market data source (``TRADETRAIL_MARKET_DATA``); when it is down, a
cached row is served and marked stale, and a lookup nothing can answer is a 502 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tradetrail.api.deps import AppDep, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.schemas import LABEL_PATTERN
from tradetrail.catalogue import symbols as svc

router = APIRouter(prefix="/api/symbols", tags=["symbols"], responses=ERROR_RESPONSES)
Conid = Annotated[int, Path(ge=1, le=2**53, description="IBKR contract id")]
SearchText = Annotated[str, Query(min_length=1, max_length=64, pattern=LABEL_PATTERN,
                                  description="a ticker or company name (not blank, no control characters)")]


class ConidsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    conids: list[Annotated[int, Field(ge=1, le=2**53)]] = Field(min_length=1, max_length=100)


@router.get("/search", response_model=list[dict[str, Any]])
def search(app: AppDep, user: UserDep, query: SearchText,
           limit: Annotated[int, Query(ge=1, le=50)] = 20) -> list[dict]:
    """By ticker or company name; served from the cache when it is fresh."""
    return svc.search_symbols(app, query, limit=limit)


@router.get("/conid/{conid}", response_model=dict[str, Any])
def by_conid(conid: Conid, app: AppDep, user: UserDep) -> dict:
    return svc.contract_by_conid(app, conid)


@router.post("/batch", response_model=dict[str, Any])
def batch(body: ConidsIn, app: AppDep, user: UserDep) -> dict:
    """Cache up to 100 contracts by conid; the answer says which were cached and which failed."""
    return svc.cache_conids(app, body.conids)


@router.post("/refresh", response_model=dict[str, Any])
def refresh(app: AppDep, user: UserDep,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    """Refresh cached rows older than the 7-day TTL."""
    return svc.refresh_stale(app, limit=limit)


@router.get("/cache/stats", response_model=dict[str, Any])
def stats(app: AppDep, user: UserDep) -> dict:
    """Total rows, by asset type, stale rows, top exchanges."""
    return svc.cache_stats(app)
