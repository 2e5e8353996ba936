"""A market that is current today: a stretch of the bundled S&P 500 sample written as a ``files`` source, its
sessions re-dated onto the NYSE calendar so the chosen day is the latest session closed by now (and the
sessions after it lie ahead). Real-clock strategies need bars this fresh: stale ones fail fetch_market_data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tradetrail.catalogue.calendars import calendar
from tradetrail.marketdata.sample import load_sample_daily

NY = "America/New_York"


def write_fresh_spx(folder: Path, *, last: str = "2005-01-03", ahead: int = 5,
                    now: datetime | None = None) -> list[pd.Timestamp]:
    """Write ``folder/SPX.csv``: the sample's sessions up to ``last`` ending on the latest NYSE session whose
    16:00 New York bar stamp is not after ``now``, and ``ahead`` more sessions after it. Returns the bar
    stamps (UTC) of those sessions ahead, for letting the simulator's time pass onto them."""
    now = now or datetime.now(UTC)
    sample = load_sample_daily("SPX")
    upto = sample.loc[:pd.Timestamp(last).tz_localize(NY).replace(hour=16).tz_convert("UTC")]
    rows = pd.concat([upto, sample.iloc[len(upto):len(upto) + ahead]])
    sessions = calendar().sessions
    stamps = pd.DatetimeIndex([pd.Timestamp(d).tz_localize(NY).replace(hour=16).tz_convert("UTC") for d in sessions])
    done = int(stamps.searchsorted(pd.Timestamp(now), side="right"))  # sessions whose bar is complete by now
    dates = sessions[done - len(upto):done + ahead]
    frame = rows.reset_index(drop=True)[["open", "high", "low", "close", "volume"]]
    frame.insert(0, "date", [d.strftime("%Y-%m-%d") for d in dates])
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "SPX.csv", index=False)
    return list(stamps[done:done + ahead])
