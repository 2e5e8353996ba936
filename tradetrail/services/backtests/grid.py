"""A parameter grid: every combination of the given analyst parameters, each a recorded backtest of its own,
run in worker processes (one per core: the loop is CPU-bound Python), ranked by a chosen figure."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date

from sqlalchemy import update

from tradetrail.db.backtest_models import Backtest
from tradetrail.services.backtests.running import BacktestRequest, create, execute
from tradetrail.services.errors import InvalidBacktest

MAX_COMBINATIONS = 500
SORTABLE = ("total_return_pct", "cagr_pct", "max_drawdown_pct", "sharpe", "sortino", "calmar", "win_rate_pct",
            "profit_factor", "average_r", "expectancy", "trades", "final_equity")


def _execute_in_child(settings, backtest_id: str) -> tuple[str, dict | None, str | None]:
    from tradetrail.runtime.build import build_app

    app = build_app(settings, migrate=False)
    try:
        return backtest_id, execute(app, backtest_id)["stats"], None
    except InvalidBacktest as exc:
        return backtest_id, None, str(exc)
    finally:
        app.engine.dispose()


def combinations(grid: dict[str, list]) -> list[dict]:
    if not grid or any(not values for values in grid.values()):
        raise InvalidBacktest("a grid needs at least one value for every parameter")
    count = 1
    for values in grid.values():
        count *= len(values)
    if count > MAX_COMBINATIONS:
        raise InvalidBacktest(f"{count} combinations; at most {MAX_COMBINATIONS} in one grid")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def run_grid(app, user_id: int, name: str, start: date, end: date, cash: float | None, grid: dict[str, list], *,
             sort: str = "sharpe", workers: int | None = None) -> list[dict]:
    """Every combination's backtest (created here, so a bad one is refused before any runs), run on
    ``workers`` processes; rows ``{"id", "params", "stats" | None, "error"}`` best first by ``sort``."""
    if sort not in SORTABLE:
        raise InvalidBacktest(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    grid_id = str(uuid.uuid4())
    ids = []
    for params in combinations(grid):
        backtest_id = create(app, user_id, BacktestRequest(name, start, end, cash, params))
        ids.append((backtest_id, params))
    with app.engine.begin() as conn:
        conn.execute(update(Backtest).where(Backtest.id.in_([i for i, _ in ids])).values(grid_id=grid_id))
    size = max(1, min(workers or os.cpu_count() or 1, len(ids)))
    results: dict[str, tuple] = {}
    with ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn")) as pool:
        for backtest_id, stats, error in pool.map(_execute_in_child, [app.settings] * len(ids), [i for i, _ in ids]):
            results[backtest_id] = (stats, error)
    rows = [{"id": i, "grid_id": grid_id, "params": p, "stats": results[i][0], "error": results[i][1]}
            for i, p in ids]
    descending = sort != "max_drawdown_pct"  # a smaller drawdown ranks first

    def key(row: dict):
        value = (row["stats"] or {}).get(sort)
        return (value is None, -(value or 0) if descending else (value or 0))
    return sorted(rows, key=key)
