"""Dataclass records as plain dicts, without ``dataclasses.asdict``'s deep copy.

``asdict`` copies every leaf with ``copy.deepcopy``; the records a run writes to its lineage (indicators,
signals, risk decisions) hold only numbers, strings, enums and dates, so the copy bought nothing and cost a
third of encoding a step's output. Containers (dicts, lists, tuples, nested records) are rebuilt as asdict
rebuilds them; leaves are shared, so a record holding a mutable leaf must not be changed through the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The dataclass's field names, in order (remembered per class)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def as_dict(record: Any) -> dict:
    """What ``dataclasses.asdict(record)`` gives, sharing the leaves."""
    return {name: _plain(getattr(record, name)) for name in field_names(type(record))}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_dict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        if hasattr(value, "_fields"):  # a named tuple, rebuilt field by field as asdict does
            return type(value)(*[_plain(v) for v in value])
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
