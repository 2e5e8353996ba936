"""Orders, fills, positions, portfolio, reconciliation, trading state (halt/resume) and the broker's status."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from tradetrail.api.deps import AppDep, Limit, Offset, RowId, UserDep
from tradetrail.api.errors import ERROR_RESPONSES, ApiError
from tradetrail.api.schemas import (
    CancelOut,
    HaltIn,
    OrderDetailOut,
    OrderOut,
    Page,
    PortfolioOut,
    PositionOut,
    SnapshotOut,
    TradeOut,
    TradingStateIn,
    TradingStateOut,
    page,
)
from tradetrail.domain.orders import OrderState
from tradetrail.domain.risk import TradingState
from tradetrail.services import orders as order_svc
from tradetrail.services import orders_query, portfolio, trading_state
from tradetrail.services.strategies import get_strategy

router = APIRouter(prefix="/api", tags=["trading"], responses=ERROR_RESPONSES)
StateFilter = Literal[tuple(s.value for s in OrderState)]  # type: ignore[valid-type]
NameFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
SymbolFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9.\-_ ]{1,32}$")]


def _strategy_id(app, user_id: int, name: str | None) -> int | None:
    if name is None:
        return None
    with app.Session() as s:
        return get_strategy(s, user_id, name).id


@router.get("/orders", response_model=Page[OrderOut])
def orders(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0, state: StateFilter | None = None,
           strategy: NameFilter = None, symbol: SymbolFilter = None) -> dict:
    """Orders newest first, filtered by state, strategy or symbol."""
    rows = orders_query.list_orders(app, user.user_id, state=state, strategy=strategy, symbol=symbol,
                                    limit=limit + 1, offset=offset)
    return page(rows, limit, offset)


@router.get("/orders/{order_id}", response_model=OrderDetailOut)
def order(order_id: RowId, app: AppDep, user: UserDep) -> dict:
    """One order with its state changes and fills."""
    return orders_query.order_detail(app, user.user_id, order_id)


@router.post("/orders/{order_id}/cancel", response_model=CancelOut)
def cancel(order_id: RowId, app: AppDep, user: UserDep) -> dict:
    """Ask the broker to cancel a working order; its state changes when the broker reports it."""
    try:
        outcome = order_svc.cancel(app, order_id, user_id=user.user_id)
    except ValueError as exc:
        raise ApiError(409, "not_cancellable", str(exc)) from None
    return {"order_id": order_id, "cancel": outcome}


@router.get("/positions", response_model=list[PositionOut])
def positions(app: AppDep, user: UserDep) -> list[dict]:
    return portfolio.current(app, user.user_id, portfolio.latest_as_of(app, user.user_id))["positions"]


@router.get("/portfolio", response_model=PortfolioOut)
def current(app: AppDep, user: UserDep) -> dict:
    """Cash and equity as the broker reports them; positions marked to market."""
    return portfolio.current(app, user.user_id, portfolio.latest_as_of(app, user.user_id))


@router.get("/portfolio/snapshots", response_model=Page[SnapshotOut])
def snapshots(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0,
              kind: Literal["execution", "daily", "reconcile"] | None = None) -> dict:
    rows = portfolio.snapshots(app, user.user_id, kind=kind, limit=limit + 1, offset=offset)
    return page(rows, limit, offset)


@router.get("/portfolio/statistics", response_model=dict[str, Any])
def statistics(app: AppDep, user: UserDep, strategy: NameFilter = None) -> dict:
    """Trades, win rate, profit factor, average R, largest win and loss, drawdown."""
    return portfolio.stats(app, user.user_id, _strategy_id(app, user.user_id, strategy))


@router.get("/portfolio/trades", response_model=list[TradeOut])
def trades(app: AppDep, user: UserDep, strategy: NameFilter = None) -> list[dict]:
    return portfolio.trades(app, user.user_id, _strategy_id(app, user.user_id, strategy))


@router.post("/reconcile", response_model=dict[str, Any])
def reconcile(app: AppDep, user: UserDep) -> dict:
    """Compare our orders and positions with the broker's and settle every order of unknown fate."""
    from tradetrail.services.reconcile import reconcile as do_reconcile

    return do_reconcile(app, user.user_id)


@router.get("/trading-state", response_model=list[TradingStateOut])
def states(app: AppDep, user: UserDep) -> list[dict]:
    """The account-wide state and every strategy's own (ACTIVE unless set)."""
    return trading_state.list_states(app, user.user_id)


@router.post("/trading-state/halt", response_model=TradingStateOut)
def halt(body: HaltIn, app: AppDep, user: UserDep) -> dict:
    """HALTED (no orders) or, with ``reducing``, exits only — for the account or one strategy."""
    scope = trading_state.scope_for(_strategy_id(app, user.user_id, body.strategy))
    state = TradingState.REDUCING if body.reducing else TradingState.HALTED
    return trading_state.set_state(app, user.user_id, scope, state, body.reason)


@router.post("/trading-state/resume", response_model=TradingStateOut)
def resume(body: TradingStateIn, app: AppDep, user: UserDep) -> dict:
    scope = trading_state.scope_for(_strategy_id(app, user.user_id, body.strategy))
    return trading_state.set_state(app, user.user_id, scope, TradingState.ACTIVE, body.reason)
