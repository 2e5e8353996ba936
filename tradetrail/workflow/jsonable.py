"""Turning step inputs and outputs into plain JSON (numpy scalars, timestamps, dataclasses, NaN)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradetrail.domain.records import field_names


def to_jsonable(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf become None, timestamps ISO strings, numpy scalars Python numbers."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # field by field: no deep copy
        return {name: to_jsonable(getattr(value, name)) for name in field_names(type(value))}
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON (stable bytes for hashing)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
