"""A user's strategy names by id, in one query: labels for rows that keep only the id (trading states)."""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.db.models import Strategy


def strategy_names(app, user_id: int) -> dict[int, str]:
    with app.Session() as s:
        return dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
