"""Exchange calendars, loaded once per process (each takes ~150 ms to build)."""

from __future__ import annotations

from functools import lru_cache

import exchange_calendars as xcals

DEFAULT_EXCHANGE = "XNYS"


@lru_cache(maxsize=8)
def calendar(code: str = DEFAULT_EXCHANGE):
    return xcals.get_calendar(code)
