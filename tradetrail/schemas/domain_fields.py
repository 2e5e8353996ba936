"""Pydantic fields for the domain's settings dataclasses, built from the domain's own bound tables.

The domain keeps plain dataclasses (no framework imports) that check themselves at construction. Declared
as a strategy field through :func:`bounded`, a dataclass is parsed by a strict pydantic model generated
from its bound table, so the JSON/OpenAPI schema states every range the code refuses, booleans and
numbers are not coerced from strings, and a bad value is named by its own path (``risk.max_position_pct``).
Cross-field rules a JSON schema cannot state (e.g. ``macd_fast < macd_slow``) stay in the dataclass and are
named in the model's description. The parsed value is the domain dataclass itself.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, StrictBool, create_model
from pydantic_core import core_schema

from tradetrail.domain.bounds import Bound


def number_field(bound: Bound, default: Any, description: str | None = None) -> tuple[Any, Any]:
    """A strict int/float field whose schema carries the bound."""
    limits: dict[str, Any] = {"le": bound.hi, ("gt" if bound.lo_open else "ge"): bound.lo}
    kind = int if bound.whole else float
    return Annotated[kind, Field(strict=True, description=description, **limits)], default


class _FromModel:
    """Validate through ``model`` (dicts, or an instance re-checked as a dict), then build the dataclass."""

    def __init__(self, cls: type, model: type) -> None:
        self.cls, self.model = cls, model

    def _as_input(self, value: Any) -> Any:
        if isinstance(value, self.cls):
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(self.cls)}
        return value

    def _to_domain(self, parsed: Any) -> Any:
        return self.cls(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(self.cls)})

    def _dump(self, value: Any) -> dict:
        return dataclasses.asdict(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        inner = core_schema.no_info_after_validator_function(self._to_domain, handler.generate_schema(self.model))
        return core_schema.no_info_before_validator_function(
            self._as_input, inner,
            serialization=core_schema.plain_serializer_function_ser_schema(self._dump, when_used="always"))


def bounded(cls: type, bounds: dict[str, Bound], *, extra: dict[str, Any] | None = None,
            descriptions: dict[str, str] | None = None, doc: str | None = None) -> Any:
    """``cls`` as a pydantic field type: every dataclass field is a bounded number, a strict boolean, or has its
    type in ``extra``; a field with none of these is a programming error (its range would be invisible)."""
    extra, descriptions = extra or {}, descriptions or {}
    fields: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(cls):
        if f.name in bounds:
            fields[f.name] = number_field(bounds[f.name], f.default, descriptions.get(f.name))
        elif f.name in extra:
            fields[f.name] = (extra[f.name], f.default)
        elif isinstance(f.default, bool):
            fields[f.name] = (Annotated[StrictBool, Field(description=descriptions.get(f.name))], f.default)
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no bound: the schema would not state its range")
    model = create_model(cls.__name__, __config__=ConfigDict(extra="forbid", strict=True), __doc__=doc or cls.__doc__,
                         **fields)
    return Annotated[cls, _FromModel(cls, model)]
