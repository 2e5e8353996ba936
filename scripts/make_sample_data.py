"""Regenerate the bundled sample market data from the `arch` package.

The data: daily OHLCV of the S&P 500 index and the NASDAQ Composite, 1999-01-04 to 2018-12-31, as shipped
by the PyPI package `arch` (Kevin Sheppard, NCSA licence) under `arch/data/sp500` and `arch/data/nasdaq`.
We read the gzipped CSVs straight from the installed package (importing `arch` would pull scipy and
statsmodels for nothing), keep date/open/high/low/close/volume, and write one tidy gzipped CSV per series
(the readable, diffable copy) and the same table as Parquet (what the sample adapter reads: the dates already
parsed, so loading a series takes a fraction of the CSV's time; tests/unit/marketdata/test_sample_parquet.py
checks that both give the same bars).

Usage: pip install arch && python scripts/make_sample_data.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SERIES = {"SPX": "sp500", "COMP": "nasdaq"}
OUT = Path(__file__).resolve().parents[1] / "tradetrail" / "marketdata" / "data"


def main() -> None:
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the 'arch' package is not installed: pip install arch")
    root = Path(spec.submodule_search_locations[0]) / "data"
    OUT.mkdir(parents=True, exist_ok=True)
    for symbol, name in SERIES.items():
        raw = pd.read_csv(root / name / f"{name}.csv.gz")
        frame = pd.DataFrame(
            {
                "date": pd.to_datetime(raw["Date"], format="%m/%d/%Y").dt.strftime("%Y-%m-%d"),
                "open": raw["Open"].round(4),
                "high": raw["High"].round(4),
                "low": raw["Low"].round(4),
                "close": raw["Close"].round(4),
                "volume": raw["Volume"].astype("int64"),
            }
        )
        target = OUT / f"{symbol}.csv.gz"
        frame.to_csv(target, index=False, compression={"method": "gzip", "mtime": 0})
        write_parquet(frame, OUT / f"{symbol}.parquet")
        print(f"{symbol}: {len(frame)} rows {frame['date'].iloc[0]}..{frame['date'].iloc[-1]} -> {target.name}, "
              f"{symbol}.parquet")


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    """The table with the date as a timestamp (midnight, microseconds, as the CSV's dates parse), no pandas
    metadata (the same bytes whatever pandas wrote it) and zstd without dictionaries (about the gzipped CSV's
    size: the prices repeat too rarely for a dictionary to pay)."""
    table = pa.Table.from_pandas(frame.assign(date=pd.to_datetime(frame["date"], format="%Y-%m-%d")),
                                 preserve_index=False)
    table = table.set_column(0, "date", table.column("date").cast(pa.timestamp("us"))).replace_schema_metadata(None)
    pq.write_table(table, target, compression="zstd", compression_level=19, use_dictionary=False)


if __name__ == "__main__":
    main()
