"""Shared route dependencies: the application object, the caller, and bounded paging parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from tradetrail.api.security import current_user
from tradetrail.app_context import App
from tradetrail.services.accounts.users import Principal


async def get_app(request: Request) -> App:
    """Async on purpose: a plain attribute read must not cost a trip through the thread pool."""
    return request.app.state.app


AppDep = Annotated[App, Depends(get_app)]
UserDep = Annotated[Principal, Depends(current_user)]
Limit = Annotated[int, Query(ge=1, le=100, description="page size (1–100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]

RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="row id")]
StrategyName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="strategy name")]
ExecutionId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$",
                                  description="execution id (a UUID)")]
