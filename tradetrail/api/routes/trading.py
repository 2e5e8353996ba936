"""Orders, fills, positions, portfolio, reconciliation, trading state (halt/resume) and the broker's status.

A user has several accounts (the one their real-clock strategies share, and one per replay-clock strategy):
every listing names the account of its rows and takes an ``account`` filter (404 for one not theirs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from tradetrail.api.deps import AppDep, Limit, Offset, RowId, UserDep
from tradetrail.api.errors import ERROR_RESPONSES, ApiError
from tradetrail.api.schemas import (
    ACCOUNT_PATTERN,
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
from tradetrail.services.strategies.configs import strategy_id_named
from tradetrail.services.trading import halts
from tradetrail.services.trading import order_lists as orders_query
from tradetrail.trading import orders as order_svc
from tradetrail.trading import portfolio, trading_state
from tradetrail.trading.trading_accounts import find_account

router = APIRouter(prefix="/api", tags=["trading"], responses=ERROR_RESPONSES)
StateFilter = Literal[tuple(s.value for s in OrderState)]  # type: ignore[valid-type]
NameFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
SymbolFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9.\-_ ]{1,32}$")]
AccountFilter = Annotated[str | None, Query(pattern=ACCOUNT_PATTERN, description="one of your accounts (GET "
                                                                                   "/api/portfolio lists them)")]


def _account(app, user_id: int, account: str | None) -> str | None:
    """The account filter, checked to be the user's (404 otherwise, like any name that is not theirs)."""
    if account is not None:
        find_account(app, user_id, account)
    return account


@router.get("/orders", response_model=Page[OrderOut])
def orders(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0, state: StateFilter | None = None,
           strategy: NameFilter = None, symbol: SymbolFilter = None, account: AccountFilter = None) -> dict:
    """Orders newest first, filtered by state, strategy, symbol or account."""
    rows = orders_query.list_orders(app, user.user_id, state=state, strategy=strategy, symbol=symbol,
                                    account=account, limit=limit + 1, offset=offset)
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
def positions(app: AppDep, user: UserDep, account: AccountFilter = None) -> list[dict]:
    """Positions in every account of yours (each names its account), or in one; marked at each account's clock."""
    return portfolio.positions(app, user.user_id, account)


@router.get("/portfolio", response_model=PortfolioOut)
def current(app: AppDep, user: UserDep, account: AccountFilter = None) -> dict:
    """One account (``account``, else the one your latest run traded on): cash and equity as its broker reports
    them, positions marked to market at its own clock; ``accounts`` lists every account of yours likewise
    (a replay-clock strategy trades on a simulated account of its own)."""
    return portfolio.overview(app, user.user_id, account)


@router.get("/portfolio/snapshots", response_model=Page[SnapshotOut])
def snapshots(app: AppDep, user: UserDep, limit: Limit = 50, offset: Offset = 0,
              kind: Literal["execution", "daily", "reconcile"] | None = None, account: AccountFilter = None) -> dict:
    rows = portfolio.snapshots(app, user.user_id, kind=kind, account=_account(app, user.user_id, account),
                               limit=limit + 1, offset=offset)
    return page(rows, limit, offset)


@router.get("/portfolio/statistics", response_model=dict[str, Any])
def statistics(app: AppDep, user: UserDep, strategy: NameFilter = None, account: AccountFilter = None) -> dict:
    """Trades, win rate, profit factor, average R, largest win and loss, drawdown (the worst of any one
    account's equity curve)."""
    return portfolio.stats(app, user.user_id, strategy_id_named(app, user.user_id, strategy),
                           _account(app, user.user_id, account))


@router.get("/portfolio/trades", response_model=list[TradeOut])
def trades(app: AppDep, user: UserDep, strategy: NameFilter = None, account: AccountFilter = None) -> list[dict]:
    return portfolio.trades(app, user.user_id, strategy_id_named(app, user.user_id, strategy),
                            _account(app, user.user_id, account))


@router.post("/reconcile", response_model=dict[str, Any])
def reconcile(app: AppDep, user: UserDep, account: AccountFilter = None) -> dict:
    """Compare our orders and positions with the broker's and settle every order of unknown fate: in one
    account (its report), or in every account of yours (``accounts``: each report; the lists merged on top)."""
    from tradetrail.trading.reconcile import reconcile_user

    return reconcile_user(app, user.user_id, account)


@router.get("/trading-state", response_model=list[TradingStateOut])
def states(app: AppDep, user: UserDep) -> list[dict]:
    """The account-wide state and every strategy's own (ACTIVE unless set)."""
    return trading_state.list_states(app, user.user_id)


@router.post("/trading-state/halt", response_model=TradingStateOut)
def halt(body: HaltIn, app: AppDep, user: UserDep) -> dict:
    """HALTED (no orders) or, with ``reducing``, exits only — for every account, one account or one strategy."""
    return halts.halt(app, user.user_id, strategy=body.strategy, account=body.account, reducing=body.reducing,
                      reason=body.reason)


@router.post("/trading-state/resume", response_model=TradingStateOut)
def resume(body: TradingStateIn, app: AppDep, user: UserDep) -> dict:
    return halts.resume(app, user.user_id, strategy=body.strategy, account=body.account, reason=body.reason)
