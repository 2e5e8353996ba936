"""Prompt templates: sandboxed Jinja2 with a fixed, documented set of variables, within fixed limits.

A template may only use the variables in :data:`VARIABLES`; anything else is rejected when the template is
saved (not rendered as a silent blank at 9:35 on a Monday). Rendering uses ``StrictUndefined`` too, so a
missing value fails the analyze step instead of sending the model a hole.

Saving parses, checks and compiles a template and never evaluates any of it (jinja folds constant expressions
while compiling; the sandbox intercepts every operator and filter, so nothing is folded). Every render runs in
the bounded sandbox (``sandbox.py``) within the limits below (``limits.py``): a render that passes one stops
with a :class:`PromptTemplateError` naming it, which the API answers with 422 and a run records as the analyze
step's failure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import Template, TemplateSyntaxError, meta, nodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS

from tradetrail.prompts.budget import render_budget, text_size
from tradetrail.prompts.filters import ALLOWED_FILTERS, ALLOWED_TESTS
from tradetrail.prompts.limits import (
    MAX_BODY_CHARS,
    MAX_CALL_DEPTH,
    MAX_INT_BITS,
    MAX_NESTING,
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_STEPS,
    MAX_TOKENS,
    MAX_VALUE_CHARS,
    MAX_VARIABLES_CHARS,
    MAX_VARIABLES_NESTING,
    MAX_WORK_CHARS,
    TemplateLimitError,
    limits,
)
from tradetrail.prompts.sandbox import BoundedSandbox, rewrite

__all__ = [  # the limits are part of this module's contract
    "ALLOWED_FILTERS", "ALLOWED_TESTS", "MAX_BODY_CHARS", "MAX_CALL_DEPTH", "MAX_INT_BITS", "MAX_NESTING",
    "MAX_OUTPUT_CHARS", "MAX_RENDER_SECONDS", "MAX_STEPS", "MAX_TOKENS", "MAX_VALUE_CHARS", "MAX_VARIABLES_CHARS",
    "MAX_VARIABLES_NESTING", "MAX_WORK_CHARS", "DEFAULT_TEMPLATES", "NOT_AVAILABLE", "VARIABLES", "PromptTemplateError",
    "check_variables", "default_body", "limits", "render", "validate_template",
]

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

_env = BoundedSandbox()
_REFUSED_STATEMENTS = {  # no loader (templates are self-contained) and plain text (no HTML escaping)
    nodes.Extends: "{% extends %}", nodes.Include: "{% include %}", nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}", nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.EvalContextModifier: "{% autoescape %}",
}
NOT_AVAILABLE = sorted(set(_REFUSED_STATEMENTS.values()))
_MESSAGE_CHARS = 500  # of an error's text quoted back (it may quote the template's values)


class PromptTemplateError(ValueError):
    """A template that cannot be saved or rendered; the message says where and why."""


@dataclass(frozen=True)
class _Compiled:
    template: Template
    variables: frozenset[str]


def validate_template(body: str) -> set[str]:
    """Parse, check and compile ``body`` (evaluating nothing); return the variables it uses, or raise naming
    the syntax error, the unknown variables, filters or tests, or the limit it passes."""
    return set(_compile(body).variables)


@lru_cache(maxsize=128)
def _compile(body: str) -> _Compiled:
    """Compiling costs ~4 ms a template and every run renders three; a template version never changes."""
    if not body or not body.strip():
        raise PromptTemplateError("template is empty")
    if len(body) > MAX_BODY_CHARS:
        raise PromptTemplateError(f"template is longer than {MAX_BODY_CHARS:,} characters")
    try:
        tokens = sum(1 for _ in itertools.islice(_env.lex(body), MAX_TOKENS + 1))  # cheap; parsing is not
        if tokens > MAX_TOKENS:
            raise PromptTemplateError(f"template has more than {MAX_TOKENS:,} tokens (names, numbers, operators, "
                                      "brackets and pieces of text)")
        ast = _env.parse(body)
    except PromptTemplateError:
        raise
    except TemplateSyntaxError as exc:
        raise PromptTemplateError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise PromptTemplateError(f"template nests deeper than {MAX_NESTING} levels") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. a number literal of 5,000 digits
        raise PromptTemplateError(f"cannot parse template: {_message(exc)}") from None
    _inspect(ast)
    try:
        ast = rewrite(ast, _env)
        used = meta.find_undeclared_variables(ast)
        template = _env.from_string(ast)
    except TemplateSyntaxError as exc:
        raise PromptTemplateError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    except (SyntaxError, RecursionError, ValueError, OverflowError, MemoryError) as exc:
        raise PromptTemplateError(f"template is too complex to compile ({type(exc).__name__})") from None
    unknown = sorted(used - VARIABLES.keys())
    if unknown:
        raise PromptTemplateError(f"unknown variable(s) {', '.join(unknown)}; allowed: {', '.join(VARIABLES)}")
    return _Compiled(template, frozenset(used))


def _inspect(ast: nodes.Template) -> None:
    """Nesting depth, statements and filter and test names, walked without recursion (a template can nest
    thousands of levels deep; Python's recursion limit would answer with an error of its own)."""
    stack = [(ast, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise PromptTemplateError(f"template nests deeper than {MAX_NESTING} levels (line {node.lineno})")
        refused = _REFUSED_STATEMENTS.get(type(node))
        if refused:
            raise PromptTemplateError(f"{refused} is not available in prompt templates (line {node.lineno})")
        if isinstance(node, nodes.Filter | nodes.Test):
            _check_name(node)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


def _check_name(node: nodes.Filter | nodes.Test) -> None:
    kind, allowed, known = (("filter", ALLOWED_FILTERS, DEFAULT_FILTERS) if isinstance(node, nodes.Filter)
                            else ("test", ALLOWED_TESTS, DEFAULT_TESTS))
    if node.name in allowed:
        return
    if node.name in known:
        raise PromptTemplateError(f"{kind} {node.name!r} (line {node.lineno}) is not allowed in prompt templates; "
                                  f"allowed: {', '.join(allowed)}")
    raise PromptTemplateError(f"unknown {kind} {node.name!r} on line {node.lineno}")


def render(body: str, variables: dict) -> str:
    """Render in the bounded sandbox; a missing value, an unsafe operation or a passed limit is a
    :class:`PromptTemplateError`. The output is streamed and stops at ``MAX_OUTPUT_CHARS``."""
    template = _compile(body).template
    pieces, size = [], 0
    try:
        with render_budget():
            stream = template.generate(**variables)
            try:
                for piece in stream:
                    size += len(piece)
                    if size > MAX_OUTPUT_CHARS:
                        raise TemplateLimitError(f"the prompt would be longer than {MAX_OUTPUT_CHARS:,} characters")
                    pieces.append(piece)
            finally:
                stream.close()
    except RecursionError:
        raise PromptTemplateError("cannot render template: it nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - whatever a template does wrong is the template's error
        raise PromptTemplateError(f"cannot render template: {_message(exc)}") from None
    return "".join(pieces).strip() + "\n"


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def check_variables(values: dict) -> None:
    """Bound values a caller supplies for a preview, before anything renders with them."""
    try:
        size = text_size(values, MAX_VARIABLES_CHARS, MAX_VARIABLES_NESTING)
    except TemplateLimitError:
        raise PromptTemplateError(f"the variables nest deeper than {MAX_VARIABLES_NESTING} levels") from None
    if size > MAX_VARIABLES_CHARS:
        raise PromptTemplateError(f"the variables are longer than {MAX_VARIABLES_CHARS:,} characters")


def default_body(name: str) -> str:
    return (DEFAULTS_DIR / f"{name}.j2").read_text(encoding="utf-8")
