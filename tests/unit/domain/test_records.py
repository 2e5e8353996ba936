"""domain.records.as_dict gives what dataclasses.asdict gives, without copying the leaves."""

from __future__ import annotations

import dataclasses
from collections import namedtuple
from datetime import date
from enum import Enum

from hypothesis import given
from hypothesis import strategies as st

from tradetrail.domain.records import as_dict, field_names
from tradetrail.domain.risk import Denial, RiskDecision
from tradetrail.workflow.jsonable import to_jsonable

Pair = namedtuple("Pair", "a b")


class Colour(Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Inner:
    x: float
    when: date
    colour: Colour


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    items: list
    pair: Pair
    more: tuple
    table: dict


def test_a_nested_record_comes_out_as_asdict_makes_it() -> None:
    inner = Inner(1.5, date(2020, 1, 2), Colour.RED)
    rec = Outer("n", inner, [inner, 3, [inner]], Pair(inner, 2), (inner, "t"), {"k": inner, 4: [1, 2]})
    assert as_dict(rec) == dataclasses.asdict(rec)
    out = as_dict(rec)
    assert isinstance(out["pair"], Pair) and isinstance(out["more"], tuple) and out["items"] is not rec.items
    assert out["table"] is not rec.table  # containers are rebuilt, as asdict rebuilds them


@given(st.floats(allow_nan=False), st.integers(), st.text(max_size=20),
       st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=5))
def test_a_risk_decision_gives_the_same_dict_and_json(quantity, n, reason, numbers) -> None:
    d = RiskDecision("enter", True, quantity, reason, (Denial("cap", reason), Denial(str(n), "x")), numbers)
    assert as_dict(d) == dataclasses.asdict(d) == d.to_dict()
    assert to_jsonable(d) == to_jsonable(dataclasses.asdict(d))


def test_field_names_are_in_declaration_order() -> None:
    assert field_names(Outer) == ("name", "inner", "items", "pair", "more", "table")
