"""Regenerate the bundled sample market data from the `arch` package.

The data: daily OHLCV of the S&P 500 index and the NASDAQ Composite, 1999-01-04 to 2018-12-31, as shipped
by the PyPI package `arch` (Kevin Sheppard, NCSA licence) under `arch/data/sp500` and `arch/data/nasdaq`.
We read the gzipped CSVs straight from the installed package (importing `arch` would pull scipy and
statsmodels for nothing), keep date/open/high/low/close/volume, and write one tidy gzipped CSV per series.

Usage: pip install arch && python scripts/make_sample_data.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

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
        print(f"{symbol}: {len(frame)} rows {frame['date'].iloc[0]}..{frame['date'].iloc[-1]} -> {target.name}")


if __name__ == "__main__":
    main()
