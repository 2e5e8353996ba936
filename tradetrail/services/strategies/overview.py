"""One strategy as its page shows it: configuration, versions, next runs, recent runs, its positions and
statistics — each from the service that owns it, gathered in one call."""

from __future__ import annotations

from tradetrail.services.runs import search as execution_search
from tradetrail.services.strategies import configs as strategies
from tradetrail.services.strategies.versions import list_versions
from tradetrail.trading import portfolio

RECENT_RUNS = 10
NEXT_RUNS = 5


def strategy_positions(app, user_id: int, strategy_id: int) -> list[dict]:
    """The strategy's positions in every account of the user (open or with realised P&L)."""
    return [p for p in portfolio.positions(app, user_id) if p["strategy_id"] == strategy_id]


def overview(app, user_id: int, name: str) -> dict:
    """``NotFound`` for another user's strategy. A stored configuration that no longer validates still shows:
    its next runs carry the problem instead."""
    detail = strategies.strategy_detail(app, user_id, name)
    try:
        upcoming = strategies.next_runs(app, user_id, name, NEXT_RUNS)
        problem = None
    except (strategies.InvalidStrategy, ValueError) as exc:
        upcoming, problem = None, str(exc)
    return {"strategy": detail, "versions": list_versions(app, user_id, name), "next_runs": upcoming,
            "next_runs_problem": problem,
            "recent": execution_search.search(app, user_id, strategy=name, limit=RECENT_RUNS),
            "positions": strategy_positions(app, user_id, detail["id"]),
            "statistics": portfolio.stats(app, user_id, detail["id"])}
