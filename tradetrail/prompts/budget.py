"""One render's budget (steps, produced characters, call depth, a deadline; a long render pauses now and then
to let the server's other threads run) and the size checks every hook of the sandbox applies, so that each
single operation a template performs stays small and cheap.

The invariant the hooks keep: every value a template can reach has at most ``MAX_VALUE_CHARS`` characters of
text (counting everything a list or mapping holds, as str() would print it) and nests at most ``MAX_NESTING``
deep. Checking inputs before an operation and results after it means no single C-level operation (which holds
the GIL: the server's other requests wait for it) can build gigabytes or run for seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, MappingView
from contextlib import contextmanager
from contextvars import ContextVar

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from tradetrail.prompts.limits import (
    MAX_CALL_DEPTH,
    MAX_INT_BITS,
    MAX_NESTING,
    MAX_RENDER_SECONDS,
    MAX_STEPS,
    MAX_VALUE_CHARS,
    MAX_WORK_CHARS,
    TemplateLimitError,
)

# A render that computes for long holds CPython's interpreter lock; a thread waiting for it (the server
# answering /health, after each of its database calls) gets it only at the 5 ms switch interval. Measured on a
# loaded 2-core machine: /health took 135-260 ms during a 0.5 s render, 30-40 ms with these pauses. A normal
# render takes well under 2 ms and never pauses.
_PAUSE_EVERY_S = 0.002
_PAUSE_FOR_S = 0.0005
_SEQUENCES = (list, tuple, set, frozenset)
_SIZED = (str, bytes, dict, *_SEQUENCES)  # what len() of costs nothing and counts what a copy holds


class RenderBudget:
    """What one render may still spend. Every hook calls :meth:`tick`, so the deadline is checked often."""

    __slots__ = ("deadline", "steps", "work", "depth", "pause_at")

    def __init__(self) -> None:
        now = time.monotonic()
        self.deadline = now + MAX_RENDER_SECONDS
        self.pause_at = now + _PAUSE_EVERY_S
        self.steps = MAX_STEPS
        self.work = MAX_WORK_CHARS
        self.depth = 0

    def tick(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateLimitError(f"it takes more than {MAX_STEPS:,} steps (loop iterations, calls, "
                                     "operators, comparisons, filters and outputs)")
        now = time.monotonic()
        if now > self.deadline:
            raise TemplateLimitError(f"it takes longer than {MAX_RENDER_SECONDS} s")
        if now > self.pause_at:  # let the server's other threads run (see _PAUSE_EVERY_S)
            time.sleep(_PAUSE_FOR_S)
            self.pause_at = time.monotonic() + _PAUSE_EVERY_S

    def spend(self, amount: int) -> None:
        self.work -= amount
        if self.work < 0:
            raise TemplateLimitError(f"its operations produce more than {MAX_WORK_CHARS:,} characters and items "
                                     "in all")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_CALL_DEPTH:
            self.depth -= 1
            raise TemplateLimitError(f"calls nest deeper than {MAX_CALL_DEPTH} (a macro that calls itself "
                                     "without end?)")

    def leave(self) -> None:
        self.depth -= 1

    def produced(self, value, what: str):
        """Account for an operation's result and check it; a lazy result is counted item by item."""
        if isinstance(value, Iterator) and not isinstance(value, Counted):
            return Counted(value)
        if isinstance(value, _SIZED):
            self.spend(len(value))
        check_value(value, what)
        return value


_current: ContextVar[RenderBudget | None] = ContextVar("tradetrail_render_budget", default=None)


def current() -> RenderBudget:
    budget = _current.get()
    if budget is None:  # e.g. constant folding at compile time: refused, so it is left to the render
        raise TemplateLimitError("templates run only inside templates.render, within its limits")
    return budget


@contextmanager
def render_budget():
    token = _current.set(RenderBudget())
    try:
        yield
    finally:
        _current.reset(token)


class Counted:
    """Wraps what a loop or a lazy filter iterates: each item costs a step, so no loop runs unbudgeted."""

    __slots__ = ("_items", "_length", "_budget")

    def __init__(self, iterable) -> None:
        self._length = len(iterable) if isinstance(iterable, (*_SIZED, range)) else None
        self._items = iter(iterable)
        self._budget = current()

    def __iter__(self) -> Counted:
        return self

    def __next__(self):
        item = next(self._items)
        self._budget.tick()
        return item

    def __len__(self) -> int:  # jinja's loop.length asks; without it, it lists the rest (also counted)
        if self._length is None:
            raise TypeError("a lazy sequence has no length")
        return self._length


_END = object()


def text_size(value, limit: int = MAX_VALUE_CHARS, nesting: int = MAX_NESTING) -> int:
    """An upper estimate of ``len(str(value))``, found without building it; stops once past ``limit``.

    A list counts an item each time it appears (as str() prints it), so sharing cannot hide a huge value.
    Raises if the value nests deeper than ``nesting``.
    """
    total = 0
    stack = [(iter((value,)), 0)]
    while stack:
        items, depth = stack[-1]
        item = next(items, _END)
        if item is _END:
            stack.pop()
            continue
        if isinstance(item, str):
            total += len(item) + 2
        elif item is None or isinstance(item, bool | float):
            total += 25
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, bytes | bytearray):
            total += 4 * len(item) + 3
        elif isinstance(item, Undefined):
            continue  # it raises (StrictUndefined) when used, it is not text
        elif (inner := _contents(item)) is None:
            total += 100  # a macro, a loop, a method: printed as a short <...>
        else:
            if depth >= nesting:
                raise TemplateLimitError(f"a value nests deeper than {nesting} levels")
            total += 16 + 2 * (len(item) if hasattr(type(item), "__len__") else 0)
            stack.append((inner, depth + 1))
        if total > limit:
            return total
    return total


def _contents(item):
    """The items str() of a container prints (keys and values of a mapping), or None for anything else."""
    if isinstance(item, _SEQUENCES):
        return iter(item)
    if isinstance(item, dict):
        return _pairs(item)
    if isinstance(item, Namespace):
        return _pairs(object.__getattribute__(item, "_Namespace__attrs"))
    if isinstance(item, Mapping):
        return _pairs(item)
    if isinstance(item, MappingView):
        return iter(item)
    return None


def _pairs(mapping) -> Iterator:
    for key, value in mapping.items():
        yield key
        yield value


def check_value(value, what: str) -> None:
    """Refuse a value whose text would pass ``MAX_VALUE_CHARS`` (or that nests too deep, or an integer too big)."""
    if isinstance(value, str | bytes):
        size = len(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(f"{what} would be an integer of more than {MAX_INT_BITS:,} bits")
        return
    else:
        size = text_size(value)
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} would be longer than {MAX_VALUE_CHARS:,} characters")


def check_values(values, what: str) -> None:
    for value in values:
        check_value(value, what)
