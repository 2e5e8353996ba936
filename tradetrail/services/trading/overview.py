"""Each account's equity at a glance, from the portfolio snapshots every run and session close stores: the
latest equity and cash, P&L since the previous session (day) and since the first snapshot (total), and the
equity curve. A replayed market's "day" is its own clock's day (snapshots are stamped with the run's as-of).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select

from tradetrail.db.trading_models import PortfolioSnapshot

MAX_CURVE_POINTS = 2000


def _row(snapshot: PortfolioSnapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {"at": snapshot.at.isoformat(), "equity": snapshot.equity, "cash": snapshot.cash,
            "kind": snapshot.kind, "execution_id": snapshot.execution_id}


def accounts(app, user_id: int) -> list[dict[str, Any]]:
    """Per account (by name): ``latest``, ``day_start`` (the last snapshot before the latest one's day) and
    ``first`` snapshots, with ``day_pnl`` and ``total_pnl`` measured from them (None when there is none)."""
    with app.Session() as s:
        names = s.scalars(select(PortfolioSnapshot.account).where(PortfolioSnapshot.user_id == user_id)
                          .distinct()).all()
        out = []
        for account in sorted(names):
            mine = select(PortfolioSnapshot).where(PortfolioSnapshot.user_id == user_id,
                                                   PortfolioSnapshot.account == account)
            newest = (PortfolioSnapshot.at.desc(), PortfolioSnapshot.id.desc())
            latest = s.scalars(mine.order_by(*newest).limit(1)).first()
            first = s.scalars(mine.order_by(PortfolioSnapshot.at, PortfolioSnapshot.id).limit(1)).first()
            day = datetime.combine(latest.at.astimezone(UTC).date(), time.min, tzinfo=UTC)
            day_start = s.scalars(mine.where(PortfolioSnapshot.at < day).order_by(*newest).limit(1)).first()
            out.append({"account": account, "latest": _row(latest), "first": _row(first),
                        "day_start": _row(day_start),
                        "day_pnl": round(latest.equity - day_start.equity, 6) if day_start else None,
                        "total_pnl": round(latest.equity - first.equity, 6)})
    return out


def equity_curves(app, user_id: int, max_points: int = MAX_CURVE_POINTS) -> dict[str, list[dict[str, Any]]]:
    """Per account, equity over time: one point per timestamp (the last snapshot at it), at most
    ``max_points`` of them (evenly thinned, the newest always kept)."""
    with app.Session() as s:
        rows = s.execute(select(PortfolioSnapshot.account, PortfolioSnapshot.at, PortfolioSnapshot.equity)
                         .where(PortfolioSnapshot.user_id == user_id)
                         .order_by(PortfolioSnapshot.account, PortfolioSnapshot.at, PortfolioSnapshot.id)).all()
    curves: dict[str, dict[datetime, float]] = {}
    for account, at, equity in rows:
        curves.setdefault(account, {})[at] = equity
    out = {}
    for account, points in curves.items():
        items = sorted(points.items())
        if len(items) > max_points:
            step = len(items) / max_points
            items = [items[int(i * step)] for i in range(max_points - 1)] + [items[-1]]
        out[account] = [{"at": at.isoformat(), "equity": equity} for at, equity in items]
    return out
