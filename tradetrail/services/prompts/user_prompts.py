"""Prompt templates for the faces: list, show, save, delete and preview a user's templates (the store a run
reads is ``catalogue/prompt_store.py``)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradetrail.catalogue.prompt_store import _version, latest_template, save_template
from tradetrail.db.models import PromptTemplate, PromptTemplateVersion
from tradetrail.prompts.templates import PromptTemplateError, validate_template
from tradetrail.services.errors import PromptExists, PromptInUse

# Values for previews: the shape a real run passes (see workflow/steps/analysis.py), with made-up numbers.
SAMPLE_VARIABLES: dict = {
    "strategy": "demo", "description": "Sample strategy for previews", "symbol": "SPX",
    "name": "S&P 500 Index", "exchange": "CBOE", "currency": "USD", "as_of": "2024-03-15T20:00:00+00:00",
    "timeframe": "daily", "timeframes": ["daily", "weekly"], "close": 5117.09,
    "indicators": {tf: {"close": 5117.09, "sma_20": 5090.1, "sma_50": 4990.4, "sma_200": 4650.2, "ema_20": 5085.3,
                        "ema_50": 4995.0, "ema_200": 4660.8, "rsi": 58.3, "macd": 40.2, "macd_signal": 35.7,
                        "macd_hist": 4.5, "atr": 48.9, "bb_upper": 5190.0, "bb_middle": 5090.1,
                        "bb_lower": 4990.2, "supertrend": 4980.5, "supertrend_dir": 1.0, "supertrend_upper": 5230.0,
                        "supertrend_lower": 4980.5, "obv": 1.2e10,
                        "stoch_k": 71.0, "stoch_d": 66.4, "adx": 24.8}
                   for tf in ("daily", "weekly")},
    "confirmation": {tf: {"direction": "BULLISH", "bullish": 3, "bearish": 1, "abstained": 0, "required": 3,
                          "votes": []} for tf in ("daily", "weekly")},
    "bars": {"daily": 1500, "weekly": 300},
}


def _template_dict(session: Session, tpl: PromptTemplate, *, versions: bool = False) -> dict:
    latest = _version(session, tpl.id, tpl.latest_version)
    data = {"id": tpl.id, "name": tpl.name, "description": tpl.description, "builtin": tpl.user_id is None,
            "latest_version": tpl.latest_version, "body": latest.body if latest else "",
            "sha256": latest.sha256 if latest else None, "created_at": tpl.created_at.isoformat()}
    if versions:
        data["versions"] = [{"version": v.version, "sha256": v.sha256, "created_at": v.created_at.isoformat()}
                            for v in session.scalars(select(PromptTemplateVersion)
                                                     .where(PromptTemplateVersion.template_id == tpl.id)
                                                     .order_by(PromptTemplateVersion.version))]
    return data


def _visible(session: Session, user_id: int, name: str) -> PromptTemplate:
    from tradetrail.domain.errors import NotFound

    rows = session.scalars(select(PromptTemplate).where(
        PromptTemplate.name == name,
        (PromptTemplate.user_id == user_id) | PromptTemplate.user_id.is_(None))).all()
    if not rows:
        raise NotFound(f"no prompt template named {name!r}")
    return next((r for r in rows if r.user_id == user_id), rows[0])


def list_prompts(app, user_id: int) -> list[dict]:
    """The user's templates and the built-in ones they have not overridden."""
    with app.Session() as s:
        rows = s.scalars(select(PromptTemplate).where(
            (PromptTemplate.user_id == user_id) | PromptTemplate.user_id.is_(None))
            .order_by(PromptTemplate.name, PromptTemplate.user_id)).all()
        own = {r.name for r in rows if r.user_id == user_id}
        return [_template_dict(s, r) for r in rows if r.user_id == user_id or r.name not in own]


def prompt_detail(app, user_id: int, name: str) -> dict:
    with app.Session() as s:
        return _template_dict(s, _visible(s, user_id, name), versions=True)


def prompt_version(app, user_id: int, name: str, version: int) -> dict:
    from tradetrail.domain.errors import NotFound

    with app.Session() as s:
        tpl = _visible(s, user_id, name)
        row = _version(s, tpl.id, version)
        if row is None:
            raise NotFound(f"prompt template {name!r} has no version {version}")
        return {"name": name, "version": row.version, "body": row.body, "sha256": row.sha256,
                "created_at": row.created_at.isoformat(), "builtin": tpl.user_id is None}


def save_user_prompt(app, user_id: int, name: str, body: str, description: str | None = None) -> dict:
    """Create the user's template or add a version; saving a built-in's name makes the user's own override."""
    with app.Session() as s:
        existing = s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == user_id,
                                                         PromptTemplate.name == name))
        ref = save_template(s, name, body, user_id=user_id, description=description or "")
        tpl = s.get(PromptTemplate, ref.template_id)
        if existing is not None and description is not None:
            tpl.description = description
            s.commit()
        return _template_dict(s, tpl, versions=True)


def create_user_prompt(app, user_id: int, name: str, body: str, description: str | None = None) -> dict:
    """A new template of the user's; ``PromptExists`` if they have one of that name (a new version of it is
    :func:`save_user_prompt`). A built-in's name is free: the new template overrides it for this user."""
    with app.Session() as s:
        if s.scalar(select(PromptTemplate.id).where(PromptTemplate.user_id == user_id,
                                                    PromptTemplate.name == name)) is not None:
            raise PromptExists(f"you have a template named {name!r}; PUT a new version instead")
    return save_user_prompt(app, user_id, name, body, description)


def delete_user_prompt(app, user_id: int, name: str) -> None:
    """Delete the user's own template; refused while a strategy needs it and no built-in would take over."""
    from tradetrail.db.models import Strategy, StrategyVersion
    from tradetrail.domain.errors import NotFound

    with app.Session() as s:
        tpl = s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == user_id, PromptTemplate.name == name))
        if tpl is None:
            raise NotFound(f"no prompt template of yours named {name!r} (built-in ones cannot be deleted)")
        builtin = s.scalar(select(PromptTemplate.id).where(PromptTemplate.user_id.is_(None),
                                                           PromptTemplate.name == name))
        if builtin is None:
            users = [n for n, cfg in s.execute(
                select(Strategy.name, StrategyVersion.config).join(
                    StrategyVersion, (StrategyVersion.strategy_id == Strategy.id)
                    & (StrategyVersion.version == Strategy.current_version)).where(Strategy.user_id == user_id))
                if name in ((cfg.get("analyst") or {}).get("prompts") or {}).values()]
            if users:
                raise PromptInUse(f"prompt template {name!r} is used by strategy {', '.join(sorted(users))}")
        s.delete(tpl)
        s.commit()


def render_preview(app, user_id: int, *, body: str | None = None, name: str | None = None,
                   variables: dict | None = None) -> dict:
    """Render ``body`` (or the named template's latest version) with sample values, overridden by ``variables``.

    The render is the same bounded one a run does (templates.render); the caller's variables are bounded first."""
    from tradetrail.domain.errors import NotFound
    from tradetrail.prompts.templates import VARIABLES, check_variables, render

    if body is None:
        if name is None:
            raise PromptTemplateError("give a template body or a template name")
        with app.Session() as s:
            try:
                body = latest_template(s, name, user_id=user_id).body
            except PromptTemplateError:  # none of that name is yours or built-in: like every other lookup, 404
                raise NotFound(f"no prompt template named {name!r}") from None
    used = validate_template(body)
    unknown = sorted(set(variables or {}) - VARIABLES.keys())
    if unknown:
        raise PromptTemplateError(f"unknown variable(s) {', '.join(unknown)}; allowed: {', '.join(VARIABLES)}")
    check_variables(variables or {})
    values = {**SAMPLE_VARIABLES, **(variables or {})}
    text = render(body, values)
    return {"rendered": text, "sha256": hashlib.sha256(text.encode()).hexdigest(), "variables_used": sorted(used),
            "sample_variables": {k: values[k] for k in sorted(used)}}
