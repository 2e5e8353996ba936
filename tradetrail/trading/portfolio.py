"""Portfolio, per account: positions marked to market at the account's own clock, cash and equity from its
broker, snapshots and statistics. A user's accounts never mix (a replay-clock strategy's account stands in
2005 while the shared one stands today): listings name the account of every row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, insert, select

from tradetrail.db.models import Strategy
from tradetrail.db.trading_models import PortfolioSnapshot, Position, Trade, TradingAccount
from tradetrail.domain.contract import Contract
from tradetrail.domain.errors import NotFound
from tradetrail.domain.stats import TradeResult, max_drawdown, statistics
from tradetrail.marketdata.port import MarketDataError
from tradetrail.trading.trading_accounts import SHARED, find_account, shared_account, traded, user_accounts


def _mark(app, position: Position, as_of: datetime | None) -> float | None:
    """The last close at ``as_of`` from the position's market data source, else the last fill price."""
    if position.source and as_of is not None:
        try:
            bars = app.market_data(position.source).daily_bars(
                Contract(source=position.source, symbol=position.symbol, name=position.symbol), as_of=as_of,
                lookback=1)
            if len(bars):
                return float(bars["close"].iloc[-1])
        except MarketDataError:
            pass
    return position.last_price


# Built once (each run snapshots its account): plain rows on table columns, no ORM objects.
_P, _SN, _ST, _TA = Position.__table__, PortfolioSnapshot.__table__, Strategy.__table__, TradingAccount.__table__
_POSITIONS = (select(_P).where(_P.c.user_id == bindparam("user"), _P.c.account == bindparam("account"))
              .order_by(_P.c.symbol, _P.c.strategy_id))
_NAMES = select(_ST.c.id, _ST.c.name).where(_ST.c.user_id == bindparam("user"),
                                            _ST.c.id.in_(bindparam("ids", expanding=True)))
_OWNER = select(_TA.c.strategy_id).where(_TA.c.user_id == bindparam("user"), _TA.c.broker == bindparam("broker"),
                                         _TA.c.account == bindparam("account"))
_INSERT = insert(_SN)
_HAS = select(_SN.c.id).where(_SN.c.account == bindparam("account"), _SN.c.kind == bindparam("kind"),
                              _SN.c.at == bindparam("at")).limit(1)


def _portfolio(app, user_id: int, account: dict, as_of: datetime | None) -> dict:
    """One account: cash and equity as its broker reports them; our positions there, marked at ``as_of``."""
    name = account["account"]
    values = app.broker_for(account["broker"]).account_values(name)
    rows = []
    with app.Session() as s:
        positions = s.execute(_POSITIONS, {"user": user_id, "account": name}).all()
        names = _names(s, user_id, {p.strategy_id for p in positions})
        for p in positions:
            price = _mark(app, p, as_of) if p.quantity else p.last_price
            unrealized = p.quantity * (price - p.avg_cost) if p.quantity and price is not None else 0.0
            rows.append({"account": name, "strategy": names.get(p.strategy_id), "strategy_id": p.strategy_id,
                         "symbol": p.symbol, "quantity": p.quantity, "avg_cost": round(p.avg_cost, 6),
                         "market_price": price,
                         "market_value": round(p.quantity * price, 6) if price is not None else None,
                         "realized_pnl": round(p.realized_pnl, 6), "unrealized_pnl": round(unrealized, 6)})
    return {"account": name, "broker": account["broker"], "strategy": account.get("strategy"),
            "currency": values.currency, "paper": values.paper, "cash": values.cash,
            "equity": values.equity, "positions_value": round(sum(r["market_value"] or 0 for r in rows), 6),
            "realized_pnl": round(sum(r["realized_pnl"] for r in rows), 6),
            "unrealized_pnl": round(sum(r["unrealized_pnl"] for r in rows), 6), "positions": rows,
            "as_of": as_of.isoformat() if as_of else None}


def _names(s, user_id: int, ids: set[int | None]) -> dict[int, str]:
    """The names of these strategies of the user (only these: a user may have hundreds)."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(s.execute(_NAMES, {"user": user_id, "ids": sorted(ids)}).all())


def account_as_of(app, account: str) -> datetime | None:
    """The account's own clock: the time of its newest snapshot (a replayed account stands at its replay's
    session, a real-clock one at its latest run)."""
    with app.Session() as s:
        return s.scalar(select(func.max(PortfolioSnapshot.at)).where(PortfolioSnapshot.account == account))


def _primary(app, user_id: int) -> dict:
    """The account of the user's latest run (its newest snapshot); before any, the shared one."""
    with app.Session() as s:
        latest = s.scalar(select(PortfolioSnapshot.account).where(PortfolioSnapshot.user_id == user_id)
                          .order_by(PortfolioSnapshot.id.desc()).limit(1))
    if latest is not None:
        try:
            return find_account(app, user_id, latest)
        except NotFound:  # a snapshot older than the account registry: the shared account below
            pass
    return find_account(app, user_id, shared_account(app, user_id))


def current(app, user_id: int, as_of: datetime | None = None, account: str | None = None) -> dict:
    """One account's portfolio: ``account`` (``NotFound`` if it is not the user's), else the account of the
    user's latest run. Positions are marked at ``as_of``, else at the account's own clock."""
    row = find_account(app, user_id, account) if account is not None else _primary(app, user_id)
    return _portfolio(app, user_id, row, as_of if as_of is not None else account_as_of(app, row["account"]))


def accounts(app, user_id: int) -> list[dict]:
    """Every account of the user with its portfolio, each marked at its own clock (the shared account is
    listed even before anything traded there)."""
    rows = user_accounts(app, user_id)
    if not any(r["kind"] == SHARED and r["broker"] == app.broker.name for r in rows):
        shared_account(app, user_id)
        rows = user_accounts(app, user_id)
    return [_portfolio(app, user_id, r, account_as_of(app, r["account"])) for r in rows]


def overview(app, user_id: int, account: str | None = None) -> dict:
    """:func:`current` plus ``accounts``: every account's portfolio."""
    return current(app, user_id, account=account) | {"accounts": accounts(app, user_id)}


def positions(app, user_id: int, account: str | None = None) -> list[dict]:
    """Positions in one account, or in every account of the user (each row names its account)."""
    if account is not None:
        return current(app, user_id, account=account)["positions"]
    return [p for a in accounts(app, user_id) for p in a["positions"]]


def snapshot_run(app, user_id: int, account: str, as_of: datetime, execution_id: str,
                 close: datetime) -> tuple[dict, bool]:
    """A run's snapshot of ``account`` as of ``as_of``, and at or after the session's ``close`` that session's
    daily snapshot too if it has none yet (the same numbers), in one transaction. Returns the portfolio and
    whether the daily one was stored."""
    now = _account_now(app, user_id, account, as_of)
    with app.engine.begin() as conn:  # plain inserts: the rows are not read back
        daily = as_of >= close and conn.scalar(_HAS, {"account": account, "kind": "daily", "at": close}) is None
        conn.execute(_INSERT, [_snapshot_row(user_id, account, "execution", as_of, execution_id, now)]
                     + ([_snapshot_row(user_id, account, "daily", close, None, now)] if daily else []))
    return now, daily


def _account_now(app, user_id: int, account: str, at: datetime) -> dict:
    with app.Session() as s:
        owner = s.scalar(_OWNER, {"user": user_id, "broker": app.broker.name, "account": account})
        names = _names(s, user_id, {owner})
    return _portfolio(app, user_id, {"account": account, "broker": app.broker.name, "strategy": names.get(owner)}, at)


def _snapshot_row(user_id: int, account: str, kind: str, at: datetime, execution_id: str | None, now: dict) -> dict:
    return dict(user_id=user_id, account=account, kind=kind, at=at, execution_id=execution_id, cash=now["cash"],
                equity=now["equity"], positions_value=now["positions_value"], realized_pnl=now["realized_pnl"],
                unrealized_pnl=now["unrealized_pnl"], positions=[p for p in now["positions"] if p["quantity"]])


def equity_curves(app, user_id: int, account: str | None = None) -> dict[str, list[float]]:
    """Each account's equity over its snapshots (the accounts' clocks differ: their curves never mix)."""
    with app.Session() as s:
        q = select(PortfolioSnapshot.account, PortfolioSnapshot.equity).where(PortfolioSnapshot.user_id == user_id)
        if account is None:
            q = q.where(traded(PortfolioSnapshot.account))
        else:
            q = q.where(PortfolioSnapshot.account == account)
        rows = s.execute(q.order_by(PortfolioSnapshot.at, PortfolioSnapshot.id)).all()
    curves: dict[str, list[float]] = {}
    for name, equity in rows:
        curves.setdefault(name, []).append(equity)
    return curves


def trades(app, user_id: int, strategy_id: int | None = None, account: str | None = None) -> list[dict]:
    """Round trips, newest first: entry, exit, holding period, P&L (commissions included) and R achieved."""
    with app.Session() as s:
        names = dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
        q = select(Trade).where(Trade.user_id == user_id, traded(Trade.account))
        if strategy_id is not None:
            q = q.where(Trade.strategy_id == strategy_id)
        if account is not None:
            q = q.where(Trade.account == account)
        rows = s.scalars(q.order_by(Trade.entry_at.desc(), Trade.id.desc())).all()
    return [{"account": t.account, "strategy": names.get(t.strategy_id), "symbol": t.symbol, "status": t.status,
             "quantity": t.quantity, "entry_price": t.entry_price, "entry_at": t.entry_at.isoformat(),
             "exit_price": t.exit_price, "exit_at": t.exit_at.isoformat() if t.exit_at else None,
             "holding_days": round((t.exit_at - t.entry_at).total_seconds() / 86400, 2) if t.exit_at else None,
             "pnl": round(t.pnl, 6), "risk_per_unit": t.risk_per_unit, "r_multiple": t.r_multiple} for t in rows]


def stats(app, user_id: int, strategy_id: int | None = None, account: str | None = None) -> dict:
    """Statistics of the closed trades (of one strategy, one account, or all); the drawdown is the worst of
    any one account's equity curve (the accounts considered: ``account``, else those the trades were in,
    else every account)."""
    with app.Session() as s:
        q = select(Trade).where(Trade.user_id == user_id, Trade.status == "closed", traded(Trade.account))
        if strategy_id is not None:
            q = q.where(Trade.strategy_id == strategy_id)
        if account is not None:
            q = q.where(Trade.account == account)
        rows = s.scalars(q.order_by(Trade.exit_at)).all()
    curves = equity_curves(app, user_id, account)
    if strategy_id is not None and account is None:
        curves = {name: curve for name, curve in curves.items() if name in {t.account for t in rows}}
    results = [TradeResult(t.pnl, t.r_multiple) for t in rows]
    out = statistics(results, []).to_dict()
    for curve in curves.values():
        dd, dd_pct = max_drawdown(curve)
        out["max_drawdown"] = max(out["max_drawdown"], dd)
        if dd_pct is not None:
            out["max_drawdown_pct"] = dd_pct if out["max_drawdown_pct"] is None else max(out["max_drawdown_pct"],
                                                                                         dd_pct)
    return out


def latest_as_of(app, user_id: int) -> datetime | None:
    """The user's newest execution's as-of time (older callers; :func:`current` marks each account at its own
    clock when given no time)."""
    from tradetrail.db.models import Execution

    with app.Session() as s:
        return s.scalar(select(Execution.as_of).where(Execution.user_id == user_id)
                        .order_by(Execution.started_at.desc()).limit(1))


def snapshots(app, user_id: int, *, kind: str | None = None, account: str | None = None, limit: int = 100,
              offset: int = 0) -> list[dict]:
    """Stored snapshots, newest first."""
    with app.Session() as s:
        q = select(PortfolioSnapshot).where(PortfolioSnapshot.user_id == user_id)
        if kind:
            q = q.where(PortfolioSnapshot.kind == kind)
        if account is not None:
            q = q.where(PortfolioSnapshot.account == account)
        rows = s.scalars(q.order_by(PortfolioSnapshot.at.desc(), PortfolioSnapshot.id.desc())
                         .limit(limit).offset(offset)).all()
    return [{"id": r.id, "account": r.account, "kind": r.kind, "at": r.at.isoformat(),
             "execution_id": r.execution_id, "cash": r.cash, "equity": r.equity,
             "positions_value": r.positions_value, "realized_pnl": r.realized_pnl,
             "unrealized_pnl": r.unrealized_pnl, "positions": r.positions} for r in rows]
