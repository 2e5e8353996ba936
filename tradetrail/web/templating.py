"""Rendering pages: one Jinja2 environment (autoescaped, always), the nav, and the number and time filters.

Every page extends ``base.html``, which carries the nav, the CSRF meta tag htmx reads, and our two script
files; no template may hold an inline script or style (the Content-Security-Policy forbids them).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, PackageLoader, Undefined, select_autoescape
from markupsafe import Markup

# (label, path): the top navigation, in order. A new page adds its entry here.
NAV: list[tuple[str, str]] = [
    ("Dashboard", "/"),
    ("Strategies", "/strategies"),
    ("Executions", "/executions"),
    ("Backtests", "/backtests"),
    ("Orders", "/orders"),
    ("Portfolio", "/portfolio"),
    ("Symbols", "/symbols"),
    ("Prompts", "/prompts"),
    ("Broker", "/broker"),
    ("Settings", "/settings"),
    ("API docs", "/docs"),
]


def _number(value: Any, digits: int = 2) -> str:
    if value is None or isinstance(value, Undefined) or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.{digits}f}"


def _signed(value: Any, digits: int = 2) -> str:
    text = _number(value, digits)
    return f"+{text}" if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else text


def _qty(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")
    return _number(value)


def _parse(value: Any) -> datetime | None:
    if isinstance(value, Undefined):
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _when(value: Any, zone: str | None = None) -> str:
    """A timestamp as people read it: UTC unless a zone is given (``2005-01-03 21:00 UTC``)."""
    moment = _parse(value)
    if moment is None:
        return "—" if value in (None, "") or isinstance(value, Undefined) else str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(ZoneInfo(zone) if zone else UTC)
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"


def _day(value: Any) -> str:
    moment = _parse(value)
    if moment is None:
        return "—" if value in (None, "") or isinstance(value, Undefined) else str(value)
    return f"{moment:%Y-%m-%d}"


def _ms(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _pretty(value: Any) -> str:
    """JSON for a <pre> block (escaped by autoescape like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def _sign_class(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "gain" if value > 0 else "loss" if value < 0 else ""
    return ""


def _json_script(value: Any) -> Markup:
    """Data for our scripts inside ``<script type="application/json">`` (not executable, so the CSP allows
    it): ``<``, ``>``, ``&`` and the line separators are escaped so no text can close the element."""
    text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return Markup(text)


env = Environment(loader=PackageLoader("tradetrail.web", "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True),
                  # a value a step did not record (an older run, a failed step) shows as empty, never a 500
                  undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                  auto_reload=False)  # package files: no stat() of every template on every render
env.filters.update(num=_number, signed=_signed, qty=_qty, when=_when, day=_day, ms=_ms, pretty=_pretty,
                   sign_class=_sign_class, json_script=_json_script)
env.globals["nav"] = NAV


def render_text(template: str, **context: Any) -> str:
    """A template (or a fragment such as one step card) as text."""
    return env.get_template(template).render(**context)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A full page for the signed-in user (``request.state`` carries who and their CSRF token)."""
    state = request.state
    html = render_text(template, request=request, path=request.url.path, user=getattr(state, "user", None),
                       csrf_token=getattr(state, "csrf_token", None), **context)
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    for name, value, options in getattr(state, "set_cookies", ()):
        response.set_cookie(name, value, **options)
    return response
