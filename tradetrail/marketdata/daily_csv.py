"""Reading daily OHLCV tables (CSV or Parquet) into bars, shared by the sample and files adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tradetrail.domain.bars import BarsError, validate_bars
from tradetrail.domain.market_hours import EXCHANGE_TZ_NAME, SESSION_CLOSE_HHMM
from tradetrail.marketdata.port import MarketDataError

# A daily bar is complete at the session close (see domain/market_hours.py).
SESSION_CLOSE = SESSION_CLOSE_HHMM
EXCHANGE_TZ = EXCHANGE_TZ_NAME

_ALIASES = {"date": "date", "time": "date", "timestamp": "date", "datetime": "date",
            "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume", "vol": "volume"}
_PRICES = ("open", "high", "low", "close")
# A table already in the bundled sample's layout (scripts/make_sample_data.py): read without pandas' general
# conversion, to the same bars.
NORMALISED = pa.schema([("date", pa.timestamp("us")), *((c, pa.float64()) for c in _PRICES), ("volume", pa.int64())])


def read_daily_table(path: Path) -> pd.DataFrame:
    """Read a daily OHLCV file; column names are matched case-insensitively (``Adj Close`` is ignored)."""
    try:
        if path.suffix == ".parquet":
            file = pq.ParquetFile(path)
            table = file.read() if file.schema_arrow.equals(NORMALISED) else None
            if table is not None and not any(column.null_count for column in table.columns):
                return _normalised(table, path)
            raw = pd.read_parquet(path)  # anything else, and gaps (the general path says at which bar)
        else:
            raw = pd.read_csv(path)
    except MarketDataError:
        raise
    except Exception as exc:  # pandas raises many types for unreadable files
        raise MarketDataError(f"cannot read {path.name}: {exc}") from exc
    renamed = {c: _ALIASES[c.strip().lower()] for c in raw.columns if c.strip().lower() in _ALIASES}
    if any(old != new for old, new in renamed.items()):
        raw = raw.rename(columns=renamed)
    if "date" not in raw.columns and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names="date")
    missing = [c for c in ("date", "open", "high", "low", "close", "volume") if c not in raw.columns]
    if missing:
        raise MarketDataError(f"{path.name}: missing columns {missing} (need date, open, high, low, close, volume)")
    dates = raw["date"]
    if not pd.api.types.is_datetime64_any_dtype(dates):  # a Parquet file may hold dates already
        try:
            dates = pd.to_datetime(dates)
        except (ValueError, TypeError) as exc:
            raise MarketDataError(f"{path.name}: unreadable date column: {exc}") from exc
    days = pd.DatetimeIndex(dates)
    if days.tz is not None:  # a daily bar's label is its session date, in whatever zone it was written
        days = days.tz_localize(None)
    raw.index = _session_closes(days.to_numpy())
    return _validated(raw, path)  # validate_bars keeps open .. volume, as float copies


def _normalised(table: pa.Table, path: Path) -> pd.DataFrame:
    """The bars of a table in the :data:`NORMALISED` layout without gaps: what the general path gives."""
    frame = pd.DataFrame({c: table.column(c).to_numpy() for c in (*_PRICES, "volume")},
                         index=_session_closes(table.column("date").to_numpy()))
    return _validated(frame, path)


def _session_closes(days: np.ndarray) -> pd.DatetimeIndex:
    """Each (naive) label floored to its day, as ``normalize()`` does, at the session close in exchange time,
    in UTC: the bars' index."""
    midnight = pd.DatetimeIndex(days.astype("datetime64[D]").astype(days.dtype))
    stamps = (midnight + pd.Timedelta(SESSION_CLOSE + ":00")).tz_localize(EXCHANGE_TZ).tz_convert("UTC")
    return pd.DatetimeIndex(stamps, name="time")


def _validated(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    try:
        return validate_bars(frame, source=path.name)
    except BarsError as exc:
        raise MarketDataError(str(exc)) from exc


def tail_as_of(frame: pd.DataFrame, as_of, lookback: int) -> pd.DataFrame:
    """The last ``lookback`` bars stamped at or before ``as_of``."""
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is None:
        raise MarketDataError("as_of must be timezone-aware")
    end = frame.index.searchsorted(ts.tz_convert("UTC"), side="right")
    return frame.iloc[max(0, end - lookback):end]
