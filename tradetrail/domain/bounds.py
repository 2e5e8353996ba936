"""Allowed ranges of settings, declared once as plain data.

The domain dataclasses check their values against these at construction; the strategy schema builds its
pydantic fields (and so the JSON/OpenAPI schema) from the same tables, so what the schema says and what
the code refuses cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real


@dataclass(frozen=True)
class Bound:
    """A number in ``lo..hi`` (``lo`` excluded when ``lo_open``); ``whole`` for integers."""

    lo: float
    hi: float
    whole: bool = False
    lo_open: bool = False

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        if self.whole:
            return isinstance(value, Integral) and self.lo <= value <= self.hi
        if not isinstance(value, Real) or not math.isfinite(float(value)):
            return False
        low_ok = value > self.lo if self.lo_open else value >= self.lo
        return low_ok and value <= self.hi

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.lo_open:
            return f"{kind} greater than {self.lo} and at most {self.hi}"
        return f"{kind} between {self.lo} and {self.hi}"


def check_number(prefix: str, name: str, value: object, bound: Bound) -> None:
    """Raise ValueError naming ``prefix.name`` and the range unless ``value`` is inside ``bound``."""
    if not bound.accepts(value):
        raise ValueError(f"{prefix}.{name} must be {bound.describe()}, got {value!r}")


def check_bool(prefix: str, name: str, value: object) -> None:
    """Only true booleans: "yes", 1 or "false" are not booleans."""
    if not isinstance(value, bool):
        raise ValueError(f"{prefix}.{name} must be true or false, got {value!r}")
