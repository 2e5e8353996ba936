"""Portfolio: positions marked to market, cash and equity from the broker, snapshots and statistics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from tradetrail.db.models import Strategy
from tradetrail.db.trading_models import PortfolioSnapshot, Position, Trade
from tradetrail.domain.stats import TradeResult, statistics
from tradetrail.marketdata.port import Contract, MarketDataError


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


def current(app, user_id: int, as_of: datetime | None = None) -> dict:
    """Cash and equity as the broker reports them; our positions with realized and unrealized P&L."""
    account = app.broker.account(user_id)
    values = app.broker.account_values(account)
    rows = []
    with app.Session() as s:
        names = dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
        positions = s.scalars(select(Position).where(Position.user_id == user_id, Position.account == account)
                              .order_by(Position.symbol, Position.strategy_id)).all()
        for p in positions:
            price = _mark(app, p, as_of) if p.quantity else p.last_price
            unrealized = p.quantity * (price - p.avg_cost) if p.quantity and price is not None else 0.0
            rows.append({"strategy": names.get(p.strategy_id), "strategy_id": p.strategy_id, "symbol": p.symbol,
                         "quantity": p.quantity, "avg_cost": round(p.avg_cost, 6), "market_price": price,
                         "market_value": round(p.quantity * price, 6) if price is not None else None,
                         "realized_pnl": round(p.realized_pnl, 6), "unrealized_pnl": round(unrealized, 6)})
    return {"account": account, "currency": values.currency, "paper": values.paper, "cash": values.cash,
            "equity": values.equity, "positions_value": round(sum(r["market_value"] or 0 for r in rows), 6),
            "realized_pnl": round(sum(r["realized_pnl"] for r in rows), 6),
            "unrealized_pnl": round(sum(r["unrealized_pnl"] for r in rows), 6), "positions": rows,
            "as_of": as_of.isoformat() if as_of else None}


def snapshot(app, user_id: int, at: datetime, kind: str, execution_id: str | None = None,
             now: dict | None = None) -> dict:
    """Store the portfolio as of ``at`` (``now``: an already computed :func:`current` to store as is)."""
    now = now or current(app, user_id, at)
    with app.Session() as s:
        s.add(PortfolioSnapshot(user_id=user_id, account=now["account"], kind=kind, at=at, execution_id=execution_id,
                                cash=now["cash"], equity=now["equity"], positions_value=now["positions_value"],
                                realized_pnl=now["realized_pnl"], unrealized_pnl=now["unrealized_pnl"],
                                positions=[p for p in now["positions"] if p["quantity"]]))
        s.commit()
    return now


def has_snapshot(app, account: str, kind: str, at: datetime) -> bool:
    with app.Session() as s:
        return s.scalar(select(PortfolioSnapshot.id).where(PortfolioSnapshot.account == account,
                                                          PortfolioSnapshot.kind == kind,
                                                          PortfolioSnapshot.at == at)) is not None


def equity_curve(app, user_id: int) -> list[dict]:
    with app.Session() as s:
        rows = s.scalars(select(PortfolioSnapshot).where(PortfolioSnapshot.user_id == user_id)
                         .order_by(PortfolioSnapshot.at, PortfolioSnapshot.id)).all()
    return [{"at": r.at.isoformat(), "kind": r.kind, "equity": r.equity, "cash": r.cash} for r in rows]


def trades(app, user_id: int, strategy_id: int | None = None) -> list[dict]:
    """Round trips, newest first: entry, exit, holding period, P&L (commissions included) and R achieved."""
    with app.Session() as s:
        names = dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
        q = select(Trade).where(Trade.user_id == user_id)
        if strategy_id is not None:
            q = q.where(Trade.strategy_id == strategy_id)
        rows = s.scalars(q.order_by(Trade.entry_at.desc(), Trade.id.desc())).all()
    return [{"strategy": names.get(t.strategy_id), "symbol": t.symbol, "status": t.status, "quantity": t.quantity,
             "entry_price": t.entry_price, "entry_at": t.entry_at.isoformat(), "exit_price": t.exit_price,
             "exit_at": t.exit_at.isoformat() if t.exit_at else None,
             "holding_days": round((t.exit_at - t.entry_at).total_seconds() / 86400, 2) if t.exit_at else None,
             "pnl": round(t.pnl, 6), "risk_per_unit": t.risk_per_unit, "r_multiple": t.r_multiple} for t in rows]


def stats(app, user_id: int, strategy_id: int | None = None) -> dict:
    with app.Session() as s:
        q = select(Trade).where(Trade.user_id == user_id, Trade.status == "closed")
        if strategy_id is not None:
            q = q.where(Trade.strategy_id == strategy_id)
        trades = s.scalars(q.order_by(Trade.exit_at)).all()
    curve = [p["equity"] for p in equity_curve(app, user_id)]
    return statistics([TradeResult(t.pnl, t.r_multiple) for t in trades], curve).to_dict()


def latest_as_of(app, user_id: int) -> datetime | None:
    """The user's newest execution's as-of time: a replayed market is marked at its own clock."""
    from tradetrail.db.models import Execution

    with app.Session() as s:
        return s.scalar(select(Execution.as_of).where(Execution.user_id == user_id)
                        .order_by(Execution.started_at.desc()).limit(1))


def snapshots(app, user_id: int, *, kind: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    """Stored snapshots, newest first."""
    with app.Session() as s:
        q = select(PortfolioSnapshot).where(PortfolioSnapshot.user_id == user_id)
        if kind:
            q = q.where(PortfolioSnapshot.kind == kind)
        rows = s.scalars(q.order_by(PortfolioSnapshot.at.desc(), PortfolioSnapshot.id.desc())
                         .limit(limit).offset(offset)).all()
    return [{"id": r.id, "account": r.account, "kind": r.kind, "at": r.at.isoformat(),
             "execution_id": r.execution_id, "cash": r.cash, "equity": r.equity,
             "positions_value": r.positions_value, "realized_pnl": r.realized_pnl,
             "unrealized_pnl": r.unrealized_pnl, "positions": r.positions} for r in rows]
