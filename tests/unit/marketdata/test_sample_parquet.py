"""The bundled sample as Parquet (what the sample adapter reads) gives exactly the bars of the bundled CSV,
and reading a table is the same whichever form it takes (strings, timestamps, zones, the date as index)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradetrail.marketdata.daily_csv import NORMALISED, read_daily_table
from tradetrail.marketdata.port import MarketDataError
from tradetrail.marketdata.sample import DATA_DIR, SERIES, load_sample_daily


def assert_same_bars(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    assert got.index.dtype == expected.index.dtype and got.index.name == expected.index.name
    assert np.array_equal(got.index.asi8, expected.index.asi8)
    assert np.array_equal(got.to_numpy(), expected.to_numpy())  # bit for bit: no NaN in bars
    assert got.equals(expected)


@pytest.mark.parametrize("symbol", sorted(SERIES))
def test_sample_parquet_is_the_csv(symbol: str) -> None:
    from_csv = read_daily_table(DATA_DIR / f"{symbol}.csv.gz")
    assert len(from_csv) == 5031 and from_csv.index[0] == pd.Timestamp("1999-01-04 21:00", tz="UTC")
    assert_same_bars(read_daily_table(DATA_DIR / f"{symbol}.parquet"), from_csv)
    assert_same_bars(load_sample_daily(symbol), from_csv)


def test_a_table_reads_the_same_in_every_form(tmp_path: Path) -> None:
    """Dates as strings, as naive or zoned timestamps (a label is its date in the zone it was written) or as
    the index: the same bars, stamped at the session close (16:00 New York, 21:00 or 20:00 UTC)."""
    table = pd.DataFrame({"Date": ["1969-12-31", "1970-01-02", "2024-03-08", "2024-03-11", "2024-11-04"],
                          "Open": [1.0, 2.0, 3.0, 4.0, 5.0], "High": [1.5, 2.5, 3.5, 4.5, 5.5],
                          "Low": [0.5, 1.5, 2.5, 3.5, 4.5], "Close": [1.2, 2.2, 3.2, 4.2, 5.2],
                          "Volume": [10, 20, 30, 40, 50]})
    table.to_csv(tmp_path / "a.csv", index=False)
    expected = read_daily_table(tmp_path / "a.csv")
    assert [t.isoformat() for t in expected.index] == [
        "1969-12-31T21:00:00+00:00", "1970-01-02T21:00:00+00:00", "2024-03-08T21:00:00+00:00",
        "2024-03-11T20:00:00+00:00", "2024-11-04T21:00:00+00:00"]
    stamped = pd.to_datetime(table["Date"])
    forms = {"strings": table,
             "naive": table.assign(Date=stamped),
             "late in the day": table.assign(Date=stamped + pd.Timedelta("23h59min")),
             "zoned": table.assign(Date=stamped.dt.tz_localize("Asia/Tokyo")),
             "index": table.assign(Date=stamped).set_index("Date")}
    for name, form in forms.items():
        form.to_parquet(tmp_path / f"{name}.parquet", index=name == "index")
        got = read_daily_table(tmp_path / f"{name}.parquet")
        assert np.array_equal(got.index.asi8, expected.index.asi8), name
        assert np.array_equal(got.to_numpy(), expected.to_numpy()), name


def test_a_gap_in_a_table_of_the_samples_layout_is_refused_at_its_bar(tmp_path: Path) -> None:
    table = pq.read_table(DATA_DIR / "SPX.parquet")
    assert table.schema.equals(NORMALISED)
    close = table.column("close").to_pylist()
    close[100] = None
    pq.write_table(table.set_column(4, "close", pa.array(close, pa.float64())), tmp_path / "gap.parquet")
    with pytest.raises(MarketDataError, match=r"non-finite value in the bar at 1999-05-27T20:00:00\+00:00"):
        read_daily_table(tmp_path / "gap.parquet")
