"""Typed request and response bodies of the REST API (the OpenAPI document is generated from these).

Every text a client sends is bounded (``max_length``) and says in its pattern what the server refuses anyway:
no NUL anywhere (PostgreSQL cannot store one; ``api/limits.py`` refuses it in any body), and no control
character at all in a name. The limits are listed in the README.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradetrail.schemas.inputs import _CONTROL, _SPACE, LABEL_PATTERN, NAME_TEXT_PATTERN, TEXT_PATTERN, _In  # noqa: F401
from tradetrail.schemas.strategy import NAME_PATTERN, StrategyConfig

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, null on the last one")


def page(rows: list, limit: int, offset: int) -> dict:
    """Rows were fetched with ``limit + 1`` so the extra row tells whether another page exists."""
    more = len(rows) > limit
    return {"items": rows[:limit], "limit": limit, "offset": offset, "next_offset": offset + limit if more else None}



# The limits (README "REST API"): what a request body may hold at most.
USERNAME_MAX, PASSWORD_MAX, TOKEN_NAME_MAX, REASON_MAX = 64, 1024, 100, 500


# --- accounts ---------------------------------------------------------------------------------------------
class LoginIn(_In):
    username: str = Field(min_length=1, max_length=USERNAME_MAX, pattern=NAME_TEXT_PATTERN)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX, pattern=TEXT_PATTERN)


class UserOut(BaseModel):
    id: int
    username: str
    via: str


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str
    expires_at: str


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=TOKEN_NAME_MAX, pattern=LABEL_PATTERN,
                      description="a label (surrounding spaces are dropped); no control characters")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None


class NewTokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: str
    token: str = Field(description="shown only in this answer")


# --- strategies ---------------------------------------------------------------------------------------------
class StrategyIn(_In):
    name: str = Field(pattern=NAME_PATTERN)
    config: StrategyConfig
    enabled: bool = True


class StrategyUpdateIn(_In):
    config: StrategyConfig


class StrategyOut(BaseModel):
    id: int
    name: str
    enabled: bool
    version: int
    symbol: str | None
    mode: str | None
    cron: str | None
    created_at: str
    updated_at: str
    config: dict[str, Any] | None = None


class ValidateIn(_In):
    config: StrategyConfig


class ValidateOut(BaseModel):
    valid: bool
    problems: list[str]


class RunOut(BaseModel):
    execution_id: str
    status_url: str


class NextRun(BaseModel):
    utc: str
    local: str


class NextRunsOut(BaseModel):
    strategy: str
    cron: str | None
    timezone: str
    market_sessions_only: bool
    next: list[NextRun]
    calendar_end: str | None = Field(
        default=None, description="set when the list stops short of the count asked for because the exchange "
                                  "calendar ends (its last day); null when the list is complete")


# --- lineage --------------------------------------------------------------------------------------------------
class _Execution(BaseModel):
    id: str
    strategy: str | None
    strategy_id: int
    status: str
    trigger: str
    as_of: str
    started_at: str
    finished_at: str | None
    duration_ms: float | None
    failed_step: str | None
    error: str | None


class ExecutionSummary(_Execution):
    scheduled_for: str | None


class StepOut(BaseModel):
    number: int
    name: str
    status: Literal["succeeded", "failed", "skipped"]
    started_at: str
    duration_ms: float
    input: dict[str, Any]
    output: dict[str, Any]
    metadata: dict[str, Any]
    artifacts: dict[str, Any]
    error: str | None
    traceback: str | None


class OneStepOut(StepOut):
    execution_id: str


class ExecutionOut(_Execution):
    strategy_version_id: int
    has_errors: bool
    steps: list[StepOut]


class Durations(BaseModel):
    mean: float
    median: float
    p95: float
    max: float


class CommonError(BaseModel):
    error: str
    count: int


class StepStats(BaseModel):
    step: str
    number: int
    count: int
    succeeded: int
    failed: int
    skipped: int
    success_rate: float | None
    duration_ms: Durations
    common_errors: list[CommonError]


class StepStatsOut(BaseModel):
    executions: int
    strategy: str | None
    steps: list[StepStats]


# --- trading --------------------------------------------------------------------------------------------------
class OrderOut(BaseModel):
    id: int
    client_order_id: str
    parent_client_order_id: str | None
    strategy: str | None
    execution_id: str | None
    account: str
    broker: str
    symbol: str
    leg: str
    side: str
    type: str
    quantity: float
    limit_price: float | None
    stop_price: float | None
    tif: str
    state: str
    broker_order_id: str | None
    filled_quantity: float
    avg_fill_price: float | None
    reason: str | None
    external: bool
    sized_price: float | None = Field(description="entries: the price the risk gate sized it at (MKT: the last "
                                                  "price plus the slippage allowance; LMT: the limit)")
    price_allowance_pct: float | None = Field(description="entries: the slippage allowance a fill may use; beyond "
                                                          "it the fill is flagged")
    created_at: str
    updated_at: str


class OrderEventOut(BaseModel):
    at: str
    from_: str | None = Field(alias="from")
    to: str
    detail: str | None

    model_config = ConfigDict(populate_by_name=True)


class OrderFillOut(BaseModel):
    exec_id: str
    side: str
    quantity: float
    price: float
    commission: float
    filled_at: str


class OrderDetailOut(OrderOut):
    events: list[OrderEventOut]
    fills: list[OrderFillOut]


class CancelOut(BaseModel):
    order_id: int
    cancel: Literal["requested", "refused"]


class PositionOut(BaseModel):
    account: str
    strategy: str | None
    strategy_id: int | None
    symbol: str
    quantity: float
    avg_cost: float
    market_price: float | None
    market_value: float | None
    realized_pnl: float
    unrealized_pnl: float


class AccountPortfolioOut(BaseModel):
    account: str
    broker: str
    strategy: str | None = Field(description="the replay-clock strategy this account belongs to; null for the "
                                             "account the user's real-clock strategies share")
    currency: str
    paper: bool
    cash: float
    equity: float
    positions_value: float
    realized_pnl: float
    unrealized_pnl: float
    positions: list[PositionOut]
    as_of: str | None = Field(description="the time positions are marked at: the account's own clock")


class PortfolioOut(AccountPortfolioOut):
    accounts: list[AccountPortfolioOut] = Field(description="every account of the user, each at its own clock")


class SnapshotOut(BaseModel):
    id: int
    account: str
    kind: str
    at: str
    execution_id: str | None
    cash: float
    equity: float
    positions_value: float
    realized_pnl: float
    unrealized_pnl: float
    positions: list[dict[str, Any]]


class TradeOut(BaseModel):
    account: str
    strategy: str | None
    symbol: str
    status: str
    quantity: float
    entry_price: float
    entry_at: str
    exit_price: float | None
    exit_at: str | None
    holding_days: float | None
    pnl: float
    risk_per_unit: float | None
    r_multiple: float | None


ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class TradingStateIn(_In):
    strategy: str | None = Field(default=None, pattern=NAME_PATTERN,
                                 description="one strategy; with neither strategy nor account: every account")
    account: str | None = Field(default=None, pattern=ACCOUNT_PATTERN,
                                description="one of your accounts (GET /api/portfolio lists them); not together "
                                            "with strategy")
    reason: str = Field(default="", max_length=REASON_MAX, pattern=TEXT_PATTERN)

    # Both named (strings) is refused; both sent as null means neither, which the validator below allows too.
    model_config = ConfigDict(json_schema_extra={"not": {
        "required": ["strategy", "account"],
        "properties": {"strategy": {"type": "string"}, "account": {"type": "string"}}}})

    @model_validator(mode="after")
    def _one_scope(self) -> TradingStateIn:
        if self.strategy is not None and self.account is not None:
            raise ValueError("give a strategy or an account, not both")
        return self


class HaltIn(TradingStateIn):
    reducing: bool = Field(default=False, description="allow exits (REDUCING) instead of nothing (HALTED)")


class TradingStateOut(BaseModel):
    scope: str
    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: str | None = None
    changed_at: str | None = None
