"""Exchange calendars, loaded once per process (each takes ~150 ms to build), and session arithmetic on them."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

DEFAULT_EXCHANGE = "XNYS"


@lru_cache(maxsize=8)
def calendar(code: str = DEFAULT_EXCHANGE):
    return xcals.get_calendar(code)


def sessions_closed_between(after: datetime, until: datetime, code: str = DEFAULT_EXCHANGE) -> tuple[int, bool]:
    """How many sessions of the exchange closed after ``after`` and at or before ``until``, and whether that
    count is exact (False when the span reaches past the calendar's range, about 20 years back to one year
    ahead: then it is a lower bound)."""
    closes = calendar(code).closes
    start, end = pd.Timestamp(after), pd.Timestamp(until)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("session arithmetic needs timezone-aware times")
    if end <= start:
        return 0, True
    count = int(closes.searchsorted(end, side="right") - closes.searchsorted(start, side="right"))
    return max(0, count), bool(start >= closes.iloc[0] and end <= closes.iloc[-1])
