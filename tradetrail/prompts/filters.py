"""The filters and tests a prompt template may use, each bounded: it costs a step, its inputs and result obey
the value limit, and the ones that can grow text (center, indent, format, join, replace, batch) check their
arguments before running.

Left out on purpose: ``random`` (a replay must render the very prompt the run sent); the HTML and URL helpers
``e``, ``escape``, ``forceescape``, ``safe``, ``striptags``, ``urlize``, ``urlencode``, ``xmlattr`` (a prompt
is plain text, and striptags/urlize run regular expressions whose time grows faster than their input);
``wordwrap`` and ``pprint`` (their output grows with every line they make and, for pprint, every level of
nesting). ``tojson`` is jinja's, encoded piece by piece so it stops at the value limit.
"""

from __future__ import annotations

import json
import operator

from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.filters import make_attrgetter
from jinja2.utils import _PassArg, pass_context, pass_eval_context

from tradetrail.prompts.budget import Counted, check_value, check_values, current, text_size
from tradetrail.prompts.formats import check_printf
from tradetrail.prompts.limits import MAX_VALUE_CHARS, TemplateLimitError

ALLOWED_FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "filesizeformat",
    "first", "float", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list", "lower",
    "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "select",
    "selectattr", "slice", "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
    "wordcount",
)
ALLOWED_TESTS = tuple(DEFAULT_TESTS)  # all of them answer True or False about values that are already bounded


def _too_long(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} would make a text longer than {MAX_VALUE_CHARS:,} characters")


def _check_width(width, what: str) -> None:
    if isinstance(width, int) and width > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} above {MAX_VALUE_CHARS:,} is not allowed")


def _center(value, width=80):
    _check_width(width, "a center width")


def _indent(s, width=4, first=False, blank=False):
    _check_width(width, "an indent width")
    indention = len(width) if isinstance(width, str) else max(int(width), 0)
    text = str(s)
    if len(text) + (text.count("\n") + 2) * indention > MAX_VALUE_CHARS:
        raise _too_long("indent")


def _batch(value, linecount, fill_with=None):
    _check_width(linecount, "a batch size")


def _replace(s, old, new, count=None):
    text, old, new = str(s), str(old), str(new)
    hits = len(text) + 1 if not old else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_VALUE_CHARS:
        raise _too_long("replace")


def _format(value, *args, **kwargs):
    check_printf(str(value), kwargs or args)


def _sum(iterable, attribute=None, start=0):
    if not isinstance(start, int | float):  # adding up lists or texts copies them again at every item
        raise TemplateLimitError("sum adds up numbers only (its start must be a number)")


def _round(value, precision=0, method="common"):
    if isinstance(precision, int) and abs(precision) > _MAX_ROUND_DIGITS:  # round(5, -10**9) computes 10**10**9
        raise TemplateLimitError(f"a round precision beyond ±{_MAX_ROUND_DIGITS} is not allowed")


_MAX_ROUND_DIGITS = 100
_CHECKS = {"center": _center, "indent": _indent, "batch": _batch, "replace": _replace, "format": _format,
           "sum": _sum, "round": _round}
_MAX_JSON_INDENT = 8


def _tojson(value, indent=None) -> str:
    """Jinja's tojson (sorted keys; <, >, & and ' escaped), encoded piece by piece and stopped at the value
    limit: an indent adds whitespace on every line, the deeper the more."""
    if indent is not None and not (isinstance(indent, int) and 0 <= indent <= _MAX_JSON_INDENT
                                   or isinstance(indent, str) and len(indent) <= _MAX_JSON_INDENT):
        raise TemplateLimitError(f"a tojson indent above {_MAX_JSON_INDENT} is not allowed")
    pieces, size = [], 0
    for piece in json.JSONEncoder(sort_keys=True, indent=indent).iterencode(value):
        size += len(piece) + 5 * sum(piece.count(c) for c in "<>&'")
        if size > MAX_VALUE_CHARS:
            raise _too_long("tojson")
        pieces.append(piece)
    text = "".join(pieces)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


@pass_eval_context
def _join(eval_ctx, value, d="", attribute=None) -> str:
    """Jinja's join (without autoescape), stopping as soon as the joined text would pass the value limit."""
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    sep = str(d)
    items, size = [], -len(sep)
    for item in value:
        size += len(sep) + (len(item) if isinstance(item, str) else text_size(item))
        if size > MAX_VALUE_CHARS:
            raise _too_long("join")
        items.append(item)
    return sep.join(map(str, items))


def _call(func, pass_arg, context, value, args, kwargs):
    if pass_arg is _PassArg.context:
        return func(context, value, *args, **kwargs)
    if pass_arg is _PassArg.eval_context:
        return func(context.eval_ctx, value, *args, **kwargs)
    if pass_arg is _PassArg.environment:
        return func(context.environment, value, *args, **kwargs)
    return func(value, *args, **kwargs)


def bounded_filter(name: str, func, check=None):
    """``func`` as a filter that costs a step and checks its inputs and result. It takes the context, which
    also stops jinja from running it at compile time (constant folding)."""
    pass_arg = _PassArg.from_obj(func)
    what = f"the input of filter {name!r}"

    @pass_context
    def bounded(context, value, *args, **kwargs):
        budget = current()
        budget.tick()
        check_value(value, what)
        check_values(args, what)
        check_values(kwargs.values(), what)
        if check is not None:
            check(value, *args, **kwargs)
        return budget.produced(_call(func, pass_arg, context, value, args, kwargs), f"filter {name!r}")

    bounded.__name__, bounded.__doc__ = f"bounded_{name}", func.__doc__
    return bounded


def bounded_test(name: str, func):
    pass_arg = _PassArg.from_obj(func)
    what = f"the input of test {name!r}"

    @pass_context
    def bounded(context, value, *args, **kwargs):
        current().tick()
        check_value(value, what)
        check_values(args, what)
        return _call(func, pass_arg, context, value, args, kwargs)

    bounded.__name__ = f"bounded_{name}"
    return bounded


# Internal filters the sandbox rewrites loops, comparisons, '~' and literals into (see sandbox.py); their names
# cannot be used in a template (they are not in ALLOWED_FILTERS).
@pass_context
def _each(context, iterable):
    return iterable if isinstance(iterable, Counted) else Counted(iterable)  # a lazy filter's result counts already


@pass_context
def _concat(context, parts):
    budget = current()
    budget.tick()
    size = 0
    for part in parts:
        size += len(part) if isinstance(part, str) else text_size(part)
        if size > MAX_VALUE_CHARS:
            raise _too_long("'~'")
    return budget.produced("".join(map(str, parts)), "the result of '~'")


_COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
                "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}


@pass_context
def _compare(context, left, *operands):
    """``a < b``, ``a in b``, ``a < b <= c``: each operand checked first, so a comparison stays cheap."""
    current().tick()
    check_value(left, "an operand of a comparison")
    check_values(operands[1::2], "an operand of a comparison")
    result = True
    for op, right in zip(operands[0::2], operands[1::2], strict=True):
        result = _COMPARISONS[op](left, right)
        if not result:
            return result
        left = right
    return result


@pass_context
def _made(context, value):
    budget = current()
    budget.tick()
    return budget.produced(value, "a list, tuple or dict")


INTERNAL = {"_tt_each": _each, "_tt_concat": _concat, "_tt_compare": _compare, "_tt_made": _made}


def make_filters() -> dict:
    filters = {name: bounded_filter(name, DEFAULT_FILTERS[name], _CHECKS.get(name)) for name in ALLOWED_FILTERS}
    filters["join"] = bounded_filter("join", _join)
    filters["tojson"] = bounded_filter("tojson", _tojson)
    return {**filters, **INTERNAL}


def make_tests() -> dict:
    return {name: bounded_test(name, DEFAULT_TESTS[name]) for name in ALLOWED_TESTS}
