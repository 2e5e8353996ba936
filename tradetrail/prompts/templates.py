"""Prompt templates: sandboxed Jinja2 with a fixed, documented set of variables.

A template may only use the variables in :data:`VARIABLES`; anything else is rejected when the template is
saved (not rendered as a silent blank at 9:35 on a Monday). Rendering uses ``StrictUndefined`` too, so a
missing value fails the analyze step instead of sending the model a hole.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

VARIABLES: dict[str, str] = {
    "strategy": "strategy name",
    "description": "strategy description (may be empty)",
    "symbol": "ticker, e.g. SPX",
    "name": "instrument name, e.g. S&P 500 Index",
    "exchange": "primary exchange",
    "currency": "quote currency",
    "as_of": "time of the last complete bar the run may see (ISO 8601, UTC)",
    "timeframe": "the chart this prompt goes with: daily or weekly ('' in the system prompt)",
    "timeframes": "list of the timeframes whose charts are attached, in order",
    "close": "last close of the primary (daily) timeframe",
    "indicators": "latest indicator values by timeframe, e.g. indicators.daily.rsi, indicators.weekly.sma_50",
    "confirmation": "3-of-4 confirmation by timeframe, e.g. confirmation.daily.direction (BULLISH/BEARISH/NEUTRAL)",
    "bars": "number of bars by timeframe, e.g. bars.daily",
}

DEFAULTS_DIR = Path(__file__).with_name("defaults")
DEFAULT_TEMPLATES = {
    "decision": "System prompt: the analyst's role, the decision rules and the required JSON answer.",
    "daily": "Goes with the daily chart image.",
    "weekly": "Goes with the weekly chart image.",
}

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                           finalize=lambda value: "n/a" if value is None else value)


class PromptTemplateError(ValueError):
    """A template that cannot be saved or rendered; the message says where and why."""


def validate_template(body: str) -> set[str]:
    """Parse ``body``; return the variables it uses, or raise naming the syntax error or unknown variables."""
    if not body or not body.strip():
        raise PromptTemplateError("template is empty")
    if len(body) > 50_000:
        raise PromptTemplateError("template is longer than 50,000 characters")
    try:
        ast = _env.parse(body)
        used = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError as exc:  # includes unknown filters
        raise PromptTemplateError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    for node in ast.find_all((nodes.Filter, nodes.Test)):  # jinja resolves unknown tests only when rendering
        known = _env.filters if isinstance(node, nodes.Filter) else _env.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            raise PromptTemplateError(f"unknown {kind} {node.name!r} on line {node.lineno}")
    unknown = sorted(used - VARIABLES.keys())
    if unknown:
        raise PromptTemplateError(f"unknown variable(s) {', '.join(unknown)}; allowed: {', '.join(VARIABLES)}")
    return used


@lru_cache(maxsize=256)
def _compiled(body: str) -> Template:
    """Compiling costs ~4 ms a template and every run renders three; a template version never changes."""
    return _env.from_string(body)


def render(body: str, variables: dict) -> str:
    """Render in the sandbox; a missing value or an unsafe operation is a :class:`PromptTemplateError`."""
    try:
        return _compiled(body).render(**variables).strip() + "\n"
    except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise PromptTemplateError(f"cannot render template: {exc}") from None


def default_body(name: str) -> str:
    return (DEFAULTS_DIR / f"{name}.j2").read_text(encoding="utf-8")
