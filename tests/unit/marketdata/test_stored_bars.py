"""Stored bars for a backtest session's re-run: all of them up to the session for the rules and plug-ins (the
indicators seeded on the backtest's first bar), or a live source's window for the model's requests."""

from __future__ import annotations

from datetime import UTC, datetime

from tradetrail.marketdata.sample import SampleMarketData, load_sample_daily
from tradetrail.marketdata.stored import StoredBars


def test_windowed_stored_bars_answer_as_a_live_source_and_plain_ones_give_everything_up_to_the_session():
    bars = load_sample_daily("SPX").iloc[:400]
    origin = SampleMarketData()
    contract = origin.resolve("SPX")
    as_of = bars.index[349].to_pydatetime().astimezone(UTC)
    everything = StoredBars(origin, {"SPX"}, bars).daily_bars(contract, as_of=as_of, lookback=300)
    window = StoredBars(origin, {"SPX"}, bars, windowed=True).daily_bars(contract, as_of=as_of, lookback=300)
    assert len(everything) == 350 and everything.index[-1] == bars.index[349]
    assert len(window) == 300 and window.equals(everything.iloc[-300:])
    early = StoredBars(origin, {"SPX"}, bars, windowed=True).daily_bars(
        contract, as_of=datetime(1999, 1, 20, 22, 0, tzinfo=UTC), lookback=300)
    assert len(early) == len(bars.loc[bars.index <= "1999-01-20 22:00+00:00"])  # fewer than the window: all
