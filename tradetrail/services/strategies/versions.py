"""A strategy's stored versions and what changed between two of them (the web page's "diff")."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tradetrail.db.models import StrategyVersion
from tradetrail.domain.errors import NotFound
from tradetrail.services.strategies.configs import get_strategy

MISSING = object()


def list_versions(app, user_id: int, name: str) -> list[dict]:
    """Every version of the user's strategy, newest first (``NotFound`` for another user's)."""
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
        rows = s.scalars(select(StrategyVersion).where(StrategyVersion.strategy_id == strategy.id)
                         .order_by(StrategyVersion.version.desc())).all()
        return [{"version": r.version, "created_at": r.created_at.isoformat(),
                 "current": r.version == strategy.current_version} for r in rows]


def version_config(app, user_id: int, name: str, version: int) -> dict:
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
        row = s.scalar(select(StrategyVersion).where(StrategyVersion.strategy_id == strategy.id,
                                                     StrategyVersion.version == version))
        if row is None:
            raise NotFound(f"strategy {name!r} has no version {version}")
        return row.config


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaf values (lists are leaves: periods read as one value)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _text(value: Any) -> str:
    if value is MISSING:
        return "—"
    return json.dumps(value, ensure_ascii=False, default=str)


def config_diff(old: dict, new: dict) -> list[dict]:
    """Each field whose value differs, by its dotted path (the schema's names), with both values as JSON."""
    a, b = _flatten(old), _flatten(new)
    return [{"field": path, "old": _text(a.get(path, MISSING)), "new": _text(b.get(path, MISSING))}
            for path in sorted(set(a) | set(b)) if a.get(path, MISSING) != b.get(path, MISSING)]


def diff_versions(app, user_id: int, name: str, old: int, new: int) -> list[dict]:
    """What changed from version ``old`` to version ``new`` of the user's strategy."""
    return config_diff(version_config(app, user_id, name, old), version_config(app, user_id, name, new))
