"""A render cache keyed by content: strategies that watch one symbol draw the same chart at the same minute.

A chart is a pure function of what :func:`render_chart` reads — the drawn window of bars and indicators
(values, dtypes, column names, index and its time zone) and the title — and equal input gives equal bytes.
The key hashes exactly that, so a hit returns the bytes a fresh render would produce (a difference that
does not change the picture, such as another NaN payload, only costs a miss). A render costs ~110 ms of
CPU under the GIL; a hit costs a hash of ~25 columns of 150 rows.

The cache is bounded (entries and bytes, least recently used out first) and in-process. Behind it a run
may name a second level shared by every process and kept across restarts (:class:`StoredRenders`: the
workflow's is the ``chart_renders`` table and the artifact store), asked on a miss before drawing and told
of every drawing. Concurrent misses on one key wait for the first render instead of drawing it again
(100 threads would otherwise queue 100 renders).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from tradetrail.charts.render import check_inputs, render_chart
from tradetrail.domain.digest import update_with_frame

KEY_VERSION = b"tradetrail-chart-v1"


def render_key(bars: pd.DataFrame, indicators: pd.DataFrame, *, title: str, max_bars: int) -> str:
    """sha256 of everything the render reads (call after :func:`check_inputs`)."""
    h = hashlib.sha256(KEY_VERSION)
    h.update(repr((title, max_bars)).encode())
    for frame in (bars.iloc[-max_bars:], indicators.iloc[-max_bars:]):
        update_with_frame(h, frame)
    return h.hexdigest()


@dataclass(frozen=True)
class CachedChart:
    png: bytes
    key: str
    hit: bool
    stored: bool = False  # a hit found in the second level (drawn by another process or before a restart)

    @property
    def source(self) -> str:
        """What the lineage says: ``hit`` (this process's cache), ``stored`` (the second level), ``miss``."""
        return "stored" if self.stored else "hit" if self.hit else "miss"


class StoredRenders(Protocol):
    """A second level behind the in-process cache: the PNG drawn for a render key, if any process kept one."""

    def find(self, key: str) -> bytes | None: ...

    def keep(self, key: str, png: bytes) -> None: ...


class ChartCache:
    """Least-recently-used PNGs by render key, at most ``max_entries`` and ``max_bytes``."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 2**20):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Lock] = {}
        self.hits = self.misses = 0

    def _get(self, key: str) -> bytes | None:
        with self._lock:
            png = self._items.get(key)
            if png is not None:
                self._items.move_to_end(key)
            return png

    def _put(self, key: str, png: bytes) -> None:
        with self._lock:
            if key in self._items or len(png) > self.max_bytes:
                return
            self._items[key] = png
            self._size += len(png)
            while len(self._items) > self.max_entries or self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)

    def render(self, bars: pd.DataFrame, indicators: pd.DataFrame, *, title: str, max_bars: int = 150,
               stored: StoredRenders | None = None) -> CachedChart:
        """The chart's PNG, from the cache (or ``stored``) when the same input was drawn before."""
        check_inputs(bars, indicators, max_bars)  # invalid input fails exactly as an uncached render would
        key = render_key(bars, indicators, title=title, max_bars=max_bars)
        png = self._get(key)
        if png is None:
            with self._lock:
                flight = self._pending.setdefault(key, threading.Lock())
            with flight:  # one render per key at a time; the others find its result
                png = self._get(key)
                if png is None:
                    try:
                        kept = stored.find(key) if stored is not None else None
                        png = kept if kept is not None else render_chart(bars, indicators, title=title,
                                                                         max_bars=max_bars)
                        self._put(key, png)
                        if kept is None and stored is not None:
                            stored.keep(key, png)
                    finally:
                        with self._lock:
                            self._pending.pop(key, None)
                    with self._lock:
                        if kept is None:
                            self.misses += 1
                        else:
                            self.hits += 1
                    return CachedChart(png, key, hit=kept is not None, stored=kept is not None)
        with self._lock:
            self.hits += 1
        return CachedChart(png, key, hit=True)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._items)


chart_cache = ChartCache()
