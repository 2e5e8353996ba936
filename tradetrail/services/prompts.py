"""Prompt templates with versions. Saving validates (syntax, known variables, allowed filters, the limits of
``prompts/limits.py``; it never evaluates the template) and adds a version; the text of an old version never
changes, so every analysis can point at exactly what it sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradetrail.db.models import PromptTemplate, PromptTemplateVersion
from tradetrail.prompts.templates import (
    DEFAULT_TEMPLATES,
    PromptTemplateError,
    default_body,
    validate_template,
)


@dataclass(frozen=True)
class TemplateRef:
    template_id: int
    name: str
    version: int
    body: str
    sha256: str

    def ref(self) -> dict:
        return {"template_id": self.template_id, "name": self.name, "version": self.version,
                "sha256": self.sha256}


def save_template(session: Session, name: str, body: str, *, user_id: int | None,
                  description: str = "") -> TemplateRef:
    """Create the template or add a version (unchanged text adds nothing). Raises PromptTemplateError."""
    validate_template(body)
    tpl = session.scalar(select(PromptTemplate).where(PromptTemplate.user_id.is_(None) if user_id is None
                                                      else PromptTemplate.user_id == user_id,
                                                      PromptTemplate.name == name))
    digest = hashlib.sha256(body.encode()).hexdigest()
    if tpl is None:
        tpl = PromptTemplate(user_id=user_id, name=name, description=description, latest_version=0)
        session.add(tpl)
        session.flush()
    else:
        latest = _version(session, tpl.id, tpl.latest_version)
        if latest is not None and latest.sha256 == digest:
            return TemplateRef(tpl.id, name, latest.version, latest.body, latest.sha256)
    tpl.latest_version += 1
    session.add(PromptTemplateVersion(template_id=tpl.id, version=tpl.latest_version, body=body, sha256=digest))
    session.commit()
    return TemplateRef(tpl.id, name, tpl.latest_version, body, digest)


def _version(session: Session, template_id: int, version: int) -> PromptTemplateVersion | None:
    return session.scalar(select(PromptTemplateVersion).where(
        PromptTemplateVersion.template_id == template_id, PromptTemplateVersion.version == version))


def latest_template(session: Session, name: str, *, user_id: int) -> TemplateRef:
    """The user's own template of that name, else the built-in one; its latest version."""
    return latest_templates(session, [name], user_id=user_id)[name]


def latest_templates(session: Session, names: list[str], *, user_id: int) -> dict[str, TemplateRef]:
    """:func:`latest_template` for several names in one query (a run needs three on every execution)."""
    rows = session.execute(select(PromptTemplate.id, PromptTemplate.name, PromptTemplate.user_id,
                                  PromptTemplate.latest_version, PromptTemplateVersion.version,
                                  PromptTemplateVersion.body, PromptTemplateVersion.sha256)
                           .outerjoin(PromptTemplateVersion,
                                      (PromptTemplateVersion.template_id == PromptTemplate.id)
                                      & (PromptTemplateVersion.version == PromptTemplate.latest_version))
                           .where(PromptTemplate.name.in_(set(names)),
                                  (PromptTemplate.user_id == user_id) | PromptTemplate.user_id.is_(None))).all()
    out = {}
    for name in names:
        candidates = [r for r in rows if r.name == name]
        if not candidates:
            raise PromptTemplateError(f"no prompt template named {name!r}")
        row = next((r for r in candidates if r.user_id == user_id), candidates[0])
        if row.version is None:
            raise PromptTemplateError(f"prompt template {name!r} has no version {row.latest_version}")
        out[name] = TemplateRef(row.id, row.name, row.version, row.body, row.sha256)
    return out


def template_version(session: Session, template_id: int, version: int) -> TemplateRef:
    """One exact version (what an analysis recorded), for replays."""
    tpl = session.get(PromptTemplate, template_id)
    ver = _version(session, template_id, version) if tpl is not None else None
    if ver is None:
        raise PromptTemplateError(f"prompt template {template_id} version {version} no longer exists")
    return TemplateRef(tpl.id, tpl.name, ver.version, ver.body, ver.sha256)


def seed_default_templates(session: Session) -> list[TemplateRef]:
    """Install (or update to) the built-in templates; idempotent."""
    return [save_template(session, name, default_body(name), user_id=None, description=desc)
            for name, desc in DEFAULT_TEMPLATES.items()]


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
    from tradetrail.services.strategies import NotFound

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
    from tradetrail.services.strategies import NotFound

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


class PromptInUse(Exception):
    """Deleting the template would leave a strategy without its prompt."""


def delete_user_prompt(app, user_id: int, name: str) -> None:
    """Delete the user's own template; refused while a strategy needs it and no built-in would take over."""
    from tradetrail.db.models import Strategy, StrategyVersion
    from tradetrail.services.strategies import NotFound

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
    from tradetrail.prompts.templates import VARIABLES, check_variables, render
    from tradetrail.services.strategies import NotFound

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
