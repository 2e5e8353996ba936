"""Bounded string formatting: ``'%08.2f' % x``, the ``format`` filter and ``'{:>8}'.format(x)`` may pad, repeat
fields and print big values, so their result size is bounded before (and while) they run."""

from __future__ import annotations

import re
from collections.abc import Mapping

from jinja2.sandbox import SandboxedFormatter

from tradetrail.prompts.budget import check_value, text_size
from tradetrail.prompts.limits import MAX_VALUE_CHARS, TemplateLimitError

_FIELD_SLACK = 400  # digits a number may print beyond its width and precision (a float up to 1.8e308 has 309)
_SPEC_NUMBER = re.compile(r"\d+")


def _number(fmt: str, i: int) -> tuple[int, int]:
    if i < len(fmt) and fmt[i] == "*":
        raise TemplateLimitError("a '*' width or precision in a %-format is not allowed")
    j = i
    while j < len(fmt) and fmt[j].isdigit():
        j += 1
    if j - i > 7:
        return MAX_VALUE_CHARS + 1, j
    return (int(fmt[i:j]) if j > i else 0), j


def _printf_fields(fmt: str):
    """(width, precision) of each conversion in a %-format, scanned as CPython's formatter reads it."""
    i, n = 0, len(fmt)
    while True:
        i = fmt.find("%", i)
        if i < 0 or i + 1 >= n:
            return
        i += 1
        if fmt[i] == "%":
            i += 1
            continue
        if fmt[i] == "(":  # a mapping key; CPython balances parentheses inside it
            level, i = 1, i + 1
            while i < n and level:
                level += {"(": 1, ")": -1}.get(fmt[i], 0)
                i += 1
        while i < n and fmt[i] in "-+ #0":
            i += 1
        width, i = _number(fmt, i)
        precision = 0
        if i < n and fmt[i] == ".":
            precision, i = _number(fmt, i + 1)
        if i < n and fmt[i] in "hlL":
            i += 1
        i += 1  # the conversion character
        yield width, precision


def check_printf(fmt, args) -> None:
    """Refuse ``fmt % args`` if its result could pass ``MAX_VALUE_CHARS``; it is not formatted here."""
    if not isinstance(fmt, str):
        raise TemplateLimitError("only text can be %-formatted")
    fields = list(_printf_fields(fmt))
    if isinstance(args, Mapping):  # a key may repeat: each field may print the biggest value
        biggest = max((text_size(v) for v in args.values()), default=0)
        printed = biggest * len(fields)
    else:
        printed = sum(text_size(v) for v in (args if isinstance(args, tuple) else (args,)))
    size = len(fmt) + printed + sum(width + precision + _FIELD_SLACK for width, precision in fields)
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"a %-format would make a text longer than {MAX_VALUE_CHARS:,} characters")


class BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox (attribute access stays sandboxed), with widths, precisions and the
    result's total size bounded as each field is formatted."""

    def __init__(self, env) -> None:
        super().__init__(env)
        self.size = 0

    def vformat(self, format_string, args, kwargs):
        self.size = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value, conversion):
        check_value(value, "a formatted field")
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec: str) -> str:
        for number in _SPEC_NUMBER.findall(format_spec):
            if len(number) > 7 or int(number) > MAX_VALUE_CHARS:
                raise TemplateLimitError(f"a format width or precision above {MAX_VALUE_CHARS:,} is not allowed")
        check_value(value, "a formatted field")
        text = super().format_field(value, format_spec)
        self.size += len(text)
        if self.size > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"a format would make a text longer than {MAX_VALUE_CHARS:,} characters")
        return text
