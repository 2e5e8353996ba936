"""Market data: the bundled sample adapter, the files adapter, point-in-time reads, weekly bars and stored bars."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradetrail.domain.bars import bars_from_json, bars_to_json, resample_weekly
from tradetrail.marketdata.files import FilesMarketData
from tradetrail.marketdata.port import MarketDataError
from tradetrail.marketdata.sample import SampleMarketData, load_sample_daily

NY = ZoneInfo("America/New_York")
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
SAMPLE = SampleMarketData()
SPX = SAMPLE.resolve("SPX")


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=UTC))


# --------------------------------------------------------------------------------------------------- sample: resolve


def test_sample_resolves_spx_and_comp() -> None:
    spx, comp = SAMPLE.resolve("SPX"), SAMPLE.resolve("COMP")
    assert (spx.source, spx.symbol, spx.name, spx.sec_type) == ("sample", "SPX", "S&P 500 Index", "IND")
    assert (comp.source, comp.symbol, comp.name, comp.exchange) == ("sample", "COMP", "NASDAQ Composite Index",
                                                                     "NASDAQ")


def test_sample_resolve_ignores_case_and_surrounding_spaces() -> None:
    assert SAMPLE.resolve("spx") == SAMPLE.resolve(" Spx ") == SPX
    assert SAMPLE.resolve("comp").symbol == "COMP"


def test_sample_unknown_symbol_names_what_it_has() -> None:
    with pytest.raises(MarketDataError) as err:
        SAMPLE.resolve("AAPL")
    message = str(err.value)
    assert "'AAPL'" in message
    assert "['COMP', 'SPX']" in message


def test_sample_series_span_the_documented_range() -> None:
    for symbol, first_close, last_close in [("SPX", 1228.1, 2506.8501), ("COMP", 2208.05, 6635.2798)]:
        bars = SAMPLE.daily_bars(SAMPLE.resolve(symbol), as_of=FAR_FUTURE, lookback=10_000)
        assert len(bars) == len(SAMPLE.sessions(SAMPLE.resolve(symbol))) > 5000
        assert bars.index[0] == utc(1999, 1, 4, 21)
        assert bars.index[-1] == utc(2018, 12, 31, 21)
        assert (bars["close"].iloc[0], bars["close"].iloc[-1]) == (first_close, last_close)
        assert list(bars.columns) == ["open", "high", "low", "close", "volume"]


# ------------------------------------------------------------------------------------ stamps: 16:00 New York in UTC


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2018-01-02", utc(2018, 1, 2, 21)),  # winter (EST, UTC-5)
        ("2018-03-09", utc(2018, 3, 9, 21)),  # last Friday before the DST switch
        ("2018-03-12", utc(2018, 3, 12, 20)),  # first Monday after it (EDT, UTC-4)
        ("2018-07-02", utc(2018, 7, 2, 20)),  # summer
        ("2018-12-31", utc(2018, 12, 31, 21)),
    ],
)
def test_daily_bar_is_stamped_at_the_new_york_close(day: str, expected: pd.Timestamp) -> None:
    bars = SAMPLE.daily_bars(SPX, as_of=FAR_FUTURE, lookback=10_000)
    on_day = bars[bars.index.tz_convert(NY).strftime("%Y-%m-%d") == day]
    assert list(on_day.index) == [expected]
    assert str(on_day.index.tz) == "UTC"


def test_every_sample_bar_is_stamped_at_1600_new_york() -> None:
    local = SAMPLE.sessions(SPX).tz_convert(NY)
    assert set(zip(local.hour, local.minute, local.second, strict=True)) == {(16, 0, 0)}
    assert local.day_of_week.max() <= 4  # no weekend sessions


# ------------------------------------------------------------------------------------------- point in time, lookback


def test_bar_is_visible_exactly_from_its_close() -> None:
    at_close = SAMPLE.daily_bars(SPX, as_of=utc(2018, 12, 24, 21), lookback=3)
    just_before = SAMPLE.daily_bars(SPX, as_of=utc(2018, 12, 24, 21) - timedelta(microseconds=1), lookback=3)
    assert at_close.index[-1] == utc(2018, 12, 24, 21)
    assert at_close["close"].iloc[-1] == 2351.1001
    assert just_before.index[-1] == utc(2018, 12, 21, 21)
    assert list(just_before.index) == [utc(2018, 12, 19, 21), utc(2018, 12, 20, 21), utc(2018, 12, 21, 21)]


def test_as_of_before_the_data_gives_no_bars_and_naive_as_of_is_refused() -> None:
    assert SAMPLE.daily_bars(SPX, as_of=datetime(1998, 6, 1, tzinfo=UTC), lookback=100).empty
    with pytest.raises(MarketDataError, match="timezone-aware"):
        SAMPLE.daily_bars(SPX, as_of=datetime(2010, 1, 1), lookback=10)


ALL_SPX = load_sample_daily("SPX")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.datetimes(min_value=datetime(1998, 12, 1), max_value=datetime(2019, 3, 1)),
    zone=st.sampled_from([UTC, NY, ZoneInfo("Asia/Tokyo")]),
    lookback=st.integers(min_value=1, max_value=400),
)
def test_daily_bars_is_point_in_time_and_returns_the_most_recent(as_of: datetime, zone, lookback: int) -> None:
    as_of = as_of.replace(tzinfo=zone)
    bars = SAMPLE.daily_bars(SPX, as_of=as_of, lookback=lookback)
    cutoff = pd.Timestamp(as_of).tz_convert("UTC")
    visible = int((ALL_SPX.index <= cutoff).sum())
    assert len(bars) == min(lookback, visible)
    if len(bars):
        assert bars.index.max() <= cutoff
        end = ALL_SPX.index.get_loc(bars.index[-1])
        assert end == visible - 1  # the latest visible bar is included: nothing newer was skipped
        pd.testing.assert_frame_equal(bars, ALL_SPX.iloc[end + 1 - len(bars):end + 1])


# --------------------------------------------------------------------------------------------------- weekly resample


def test_weekly_bar_of_christmas_week_2018_by_hand() -> None:
    # Mon 24 (half day), Tue 25 closed, Wed 26, Thu 27, Fri 28 December 2018 (values from the bundled CSV).
    daily = SAMPLE.daily_bars(SPX, as_of=utc(2018, 12, 31, 22), lookback=15)
    weekly = resample_weekly(daily)
    week = weekly.loc[utc(2018, 12, 28, 21)]
    assert week["open"] == 2400.5601  # Monday's open
    assert week["high"] == 2520.27  # Friday's high
    assert week["low"] == 2346.5801  # Wednesday's low
    assert week["close"] == 2485.74  # Friday's close
    assert week["volume"] == 2613930000 + 4233990000 + 4096610000 + 3702620000
    # The week before (17-21 Dec) and the one-bar week that starts on Monday 31 Dec.
    assert list(weekly.index) == [utc(2018, 12, 14, 21), utc(2018, 12, 21, 21), utc(2018, 12, 28, 21),
                                  utc(2018, 12, 31, 21)]
    prev = weekly.loc[utc(2018, 12, 21, 21)]
    assert (prev["open"], prev["high"], prev["low"], prev["close"]) == (2590.75, 2601.1299, 2408.55, 2416.6201)
    assert prev["volume"] == 4616350000 + 4470880000 + 5127940000 + 5585780000 + 7609010000
    last = weekly.iloc[-1]
    assert (last["open"], last["high"], last["low"], last["close"], last["volume"]) == (
        2498.9399, 2509.24, 2482.8201, 2506.8501, 3442870000)


def test_partial_current_week_is_stamped_at_its_last_daily_bar() -> None:
    daily = SAMPLE.daily_bars(SPX, as_of=utc(2018, 12, 26, 21), lookback=10)
    weekly = resample_weekly(daily)
    assert weekly.index[-1] == utc(2018, 12, 26, 21)  # Wednesday, not the coming Friday
    last = weekly.iloc[-1]
    assert (last["open"], last["high"], last["low"], last["close"]) == (2400.5601, 2467.76, 2346.5801, 2467.7)
    assert last["volume"] == 2613930000 + 4233990000
    assert weekly.index.max() <= utc(2018, 12, 26, 21)


def test_week_ending_on_good_friday_is_stamped_on_thursday() -> None:
    daily = SAMPLE.daily_bars(SPX, as_of=utc(2018, 4, 6, 21), lookback=10)
    weekly = resample_weekly(daily)
    assert utc(2018, 3, 29, 20) in weekly.index  # Good Friday 30 March 2018: no session
    assert utc(2018, 3, 30, 20) not in weekly.index


# ---------------------------------------------------------------------------------------------------- stored bars


def _bars(unit: str) -> pd.DataFrame:
    frame = SAMPLE.daily_bars(SPX, as_of=FAR_FUTURE, lookback=300)
    frame = frame.copy()
    frame.index = frame.index.as_unit(unit)
    return frame


def test_bars_json_round_trip_is_exact() -> None:
    frame = _bars("ns")
    back = bars_from_json(bars_to_json(frame))
    assert list(back.index) == list(frame.index)
    assert np.array_equal(back.to_numpy(), frame.to_numpy())
    assert list(back.columns) == list(frame.columns)


@pytest.mark.parametrize("unit", ["us", "s"])
def test_bars_json_round_trip_keeps_times_of_any_resolution(unit: str) -> None:
    frame = _bars(unit)
    back = bars_from_json(bars_to_json(frame))
    assert list(back.index) == list(frame.index)


def test_bars_json_round_trip_of_adapter_bars() -> None:
    frame = SAMPLE.daily_bars(SPX, as_of=utc(2018, 12, 31, 22), lookback=3)
    back = bars_from_json(bars_to_json(frame))
    assert list(back.index) == [utc(2018, 12, 27, 21), utc(2018, 12, 28, 21), utc(2018, 12, 31, 21)]
    assert np.array_equal(back.to_numpy(), frame.to_numpy())


# ---------------------------------------------------------------------------------------------------- files adapter

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
ROWS = ["2024-01-02,100,102,99,101,100.5,1000",
        "2024-01-03,101,103,100,102.5,102,1500",
        "2024-07-01,102.5,104,101,103,102.9,1200"]


def write_csv(folder: Path, symbol: str, rows: list[str], header: str = HEADER, suffix: str = ".csv") -> Path:
    path = folder / f"{symbol}{suffix}"
    text = "\n".join([header, *rows]) + "\n"
    if suffix == ".csv.gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def read_all(md: FilesMarketData, symbol: str) -> pd.DataFrame:
    return md.daily_bars(md.resolve(symbol), as_of=FAR_FUTURE, lookback=1000)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_files_csv_with_capitalised_headers(tmp_path: Path, suffix: str) -> None:
    write_csv(tmp_path, "ACME", ROWS, suffix=suffix)
    md = FilesMarketData(tmp_path)
    contract = md.resolve("acme")
    assert (contract.source, contract.symbol, contract.name) == ("files", "ACME", "ACME")
    bars = read_all(md, "ACME")
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]  # Adj Close ignored
    assert list(bars.index) == [utc(2024, 1, 2, 21), utc(2024, 1, 3, 21), utc(2024, 7, 1, 20)]
    assert bars["close"].tolist() == [101.0, 102.5, 103.0]
    assert bars["volume"].tolist() == [1000.0, 1500.0, 1200.0]
    assert list(md.sessions(contract)) == list(bars.index)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"Date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-07-01"]),
                         "Open": [100.0, 101.0, 102.5], "High": [102.0, 103.0, 104.0], "Low": [99.0, 100.0, 101.0],
                         "Close": [101.0, 102.5, 103.0], "Volume": [1000, 1500, 1200]})


@pytest.mark.parametrize("date_as_index", [False, True])
def test_files_parquet(tmp_path: Path, date_as_index: bool) -> None:
    frame = _frame()
    if date_as_index:
        frame = frame.set_index("Date")
    frame.to_parquet(tmp_path / "PQ.parquet")
    bars = read_all(FilesMarketData(tmp_path), "PQ")
    assert list(bars.index) == [utc(2024, 1, 2, 21), utc(2024, 1, 3, 21), utc(2024, 7, 1, 20)]
    assert bars["high"].tolist() == [102.0, 103.0, 104.0]
    assert bars.dtypes.tolist() == [np.float64] * 5


def test_files_point_in_time_and_lookback(tmp_path: Path) -> None:
    write_csv(tmp_path, "ACME", ROWS)
    md = FilesMarketData(tmp_path)
    contract = md.resolve("ACME")
    bars = md.daily_bars(contract, as_of=datetime(2024, 1, 3, 15, 59, tzinfo=NY), lookback=5)
    assert list(bars.index) == [utc(2024, 1, 2, 21)]
    bars = md.daily_bars(contract, as_of=FAR_FUTURE, lookback=2)
    assert list(bars.index) == [utc(2024, 1, 3, 21), utc(2024, 7, 1, 20)]


def test_files_are_re_read_after_they_change(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ACME", ROWS[:2])
    md = FilesMarketData(tmp_path)
    assert len(read_all(md, "ACME")) == 2
    before = path.stat()
    write_csv(tmp_path, "ACME", ROWS)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))  # a clearly later mtime
    bars = read_all(md, "ACME")
    assert len(bars) == 3
    assert bars.index[-1] == utc(2024, 7, 1, 20)


def test_files_rewrite_with_the_same_mtime_is_re_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ACME", ROWS[:2])
    md = FilesMarketData(tmp_path)
    assert len(read_all(md, "ACME")) == 2
    before = path.stat()
    write_csv(tmp_path, "ACME", ROWS)  # different size and content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # e.g. a 1-2 s granularity filesystem
    assert len(read_all(md, "ACME")) == 3


def test_files_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError) as err:
        FilesMarketData(tmp_path).resolve("NOPE")
    assert str(err.value) == ("no data file for 'NOPE' in the market data folder (looked for NOPE.parquet, "
                              "NOPE.csv, NOPE.csv.gz)")


def test_files_file_removed_after_first_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ACME", ROWS)
    md = FilesMarketData(tmp_path)
    contract = md.resolve("ACME")
    assert len(read_all(md, "ACME")) == 3
    path.unlink()
    with pytest.raises(MarketDataError, match="no data file for 'ACME'"):
        md.daily_bars(contract, as_of=FAR_FUTURE, lookback=10)


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        ("Date,Open,High,Low,Close", ["2024-01-02,100,102,99,101"],
         r"BAD\.csv: missing columns \['volume'\]"),
        ("Day,Open,High,Low,Close,Volume", ["2024-01-02,100,102,99,101,5"],
         r"BAD\.csv: missing columns \['date'\]"),
        (HEADER, [ROWS[0], "not a date,101,103,100,102.5,102,1500"],
         r"BAD\.csv: unreadable date column: .*not a date"),
        (HEADER, [ROWS[0], "2024-13-45,101,103,100,102.5,102,1500"],
         r"BAD\.csv: unreadable date column: .*2024-13-45"),
        (HEADER, [ROWS[0], ROWS[1], "2024-01-03,101,103,100,102.5,102,1500"],
         r"BAD\.csv: duplicate bar at 2024-01-03T21:00:00\+00:00"),
        (HEADER, [ROWS[0], "2024-01-03,101,102,100,102.5,102,1500"],  # high 102 < close 102.5
         r"BAD\.csv: inconsistent bar at 2024-01-03T21:00:00\+00:00 \(high/low do not bound open/close"),
        (HEADER, [ROWS[0], "2024-01-03,101,103,,102.5,102,1500"],
         r"BAD\.csv: missing or non-finite value in the bar at 2024-01-03T21:00:00\+00:00"),
        (HEADER, [ROWS[0], "2024-01-03,101,103,100,NaN,102,1500"],
         r"BAD\.csv: missing or non-finite value in the bar at 2024-01-03T21:00:00\+00:00"),
        (HEADER, [ROWS[1], ROWS[0]], r"BAD\.csv: bars are not in time order"),
    ],
    ids=["no-volume", "no-date", "unparseable-date", "impossible-date", "duplicate-date", "high-below-close",
         "empty-value", "nan-value", "out-of-order"],
)
def test_files_bad_content_gives_a_clear_error(tmp_path: Path, header: str, rows: list[str], expected: str) -> None:
    write_csv(tmp_path, "BAD", rows, header=header)
    md = FilesMarketData(tmp_path)
    with pytest.raises(MarketDataError, match=expected):
        read_all(md, "BAD")


def test_files_non_numeric_price_gives_a_market_data_error(tmp_path: Path) -> None:
    write_csv(tmp_path, "BAD", [ROWS[0], "2024-01-03,101,abc,100,102.5,102,1500"])
    with pytest.raises(MarketDataError, match=r"BAD\.csv"):
        read_all(FilesMarketData(tmp_path), "BAD")


@pytest.mark.parametrize("symbol", ["../etc/passwd", "a/b", "..", ".hidden", "sub\\file", ""])
def test_files_symbol_with_a_path_is_refused(tmp_path: Path, symbol: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(tmp_path, "OUTSIDE", ROWS)  # a real file one level up: must not be reachable
    md = FilesMarketData(folder)
    with pytest.raises(MarketDataError, match="invalid symbol"):
        md.resolve(symbol)
    with pytest.raises(MarketDataError, match="invalid symbol"):
        md.resolve("../OUTSIDE")


@pytest.mark.parametrize("stamp", ["2020-01-02T00:00:00+00:00", "2020-01-02T16:00:00-05:00", "2020-01-02"])
def test_a_daily_label_keeps_its_session_date_whatever_its_zone(tmp_path: Path, stamp: str) -> None:
    # A bar labelled midnight UTC is the 2 January session, not the 1 January close in New York.
    (tmp_path / "X.csv").write_text(f"date,open,high,low,close,volume\n{stamp},10,11,9,10.5,100\n")
    source = FilesMarketData(tmp_path)
    bars = source.daily_bars(source.resolve("X"), as_of=datetime(2021, 1, 1, tzinfo=UTC), lookback=10)
    assert list(bars.index) == [utc(2020, 1, 2, 21)]
