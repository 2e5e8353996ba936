"""Reading backtests on a user's behalf: the list, one backtest with its progress and report, its artifacts."""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.db.backtest_models import Backtest
from tradetrail.db.models import LineageStep, Strategy
from tradetrail.domain.errors import NotFound
from tradetrail.services.runs.artifacts import load_for_user
from tradetrail.services.strategies.configs import get_strategy

SUMMARY = ("total_return_pct", "cagr_pct", "max_drawdown_pct", "sharpe", "trades", "win_rate_pct")


def _row_dict(row: Backtest, strategy: str, *, full: bool) -> dict:
    out = {"id": row.id, "strategy": strategy, "status": row.status, "from": row.start.isoformat(),
           "to": row.end.isoformat(), "initial_cash": row.initial_cash, "params": row.params,
           "grid_id": row.grid_id, "progress": {"done": row.done, "total": row.total},
           "created_at": row.created_at.isoformat(), "error": row.error,
           "finished_at": row.finished_at.isoformat() if row.finished_at else None,
           "data_sha256": row.data_sha256}
    stats = (row.report or {}).get("stats") or {}
    out["summary"] = {k: stats.get(k) for k in SUMMARY} if row.report else None
    if full:
        out["report"] = row.report
    return out


def list_backtests(app, user_id: int, *, strategy: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
    with app.Session() as s:
        q = (select(Backtest, Strategy.name).join(Strategy, Strategy.id == Backtest.strategy_id)
             .where(Backtest.user_id == user_id))
        if strategy is not None:  # another user's name is not found, as everywhere
            q = q.where(Backtest.strategy_id == get_strategy(s, user_id, strategy).id)
        rows = s.execute(q.order_by(Backtest.created_at.desc(), Backtest.id).limit(limit).offset(offset)).all()
        return [_row_dict(row, name, full=False) for row, name in rows]


def get_backtest(app, user_id: int, backtest_id: str) -> dict:
    with app.Session() as s:
        found = s.execute(select(Backtest, Strategy.name).join(Strategy, Strategy.id == Backtest.strategy_id)
                          .where(Backtest.id == backtest_id, Backtest.user_id == user_id)).first()
        if found is None:
            raise NotFound(f"no backtest {backtest_id!r}")
        out = _row_dict(found[0], found[1], full=True)
        step = s.scalar(select(LineageStep).where(LineageStep.execution_id == backtest_id,
                                                  LineageStep.step_name == "backtest"))
        out["artifacts"] = dict(step.artifacts) if step is not None else {}
    return out


def artifact(app, user_id: int, backtest_id: str, name: str) -> tuple[bytes, str]:
    """One of the backtest's artifacts (report, equity, trades, chart, bars_daily)."""
    found = get_backtest(app, user_id, backtest_id)
    digest = found["artifacts"].get(name)
    if digest is None:
        raise NotFound(f"backtest {backtest_id} has no {name!r} (status {found['status']})")
    return load_for_user(app, user_id, digest)


def chart_png(app, user_id: int, backtest_id: str) -> bytes:
    return artifact(app, user_id, backtest_id, "chart")[0]
