"""Content digests of frames, for caches keyed by what a pure function reads (never by row ids or time)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def update_with_frame(h, frame: pd.DataFrame) -> None:
    """Feed ``frame`` (index with its dtype and time zone, column names, dtypes, values) into hasher ``h``.

    Equal frames give equal digests; a difference that does not matter to the caller (another NaN payload,
    -0.0) can only make a key differ, never make two different frames collide."""
    index, dtypes = frame.index, [str(t) for t in frame.dtypes]
    h.update(f"|{index.dtype}|{len(index)}|{list(map(str, frame.columns))!r}|{dtypes!r}|".encode())
    h.update(np.ascontiguousarray(index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
                                  ).tobytes() if index.dtype != object else repr(index.tolist()).encode())
    if len(set(dtypes)) == 1 and dtypes[0] != "object":  # one block (bars, indicators): one copy, one hash
        h.update(np.ascontiguousarray(frame.to_numpy()).tobytes())
        return
    for name in frame.columns:
        values = frame[name].to_numpy()
        h.update(repr(values.tolist()).encode() if values.dtype == object
                 else np.ascontiguousarray(values).tobytes())
