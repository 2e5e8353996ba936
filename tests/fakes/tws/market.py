"""The fake TWS's instruments and their deterministic daily bars (a smooth trend, noise from a fixed seed per
symbol, and a stronger rise over the last 60 sessions like the Client Portal fake, so a trend strategy finds
an entry on either fake)."""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.fakes.ibkr_gateway import weekdays_until

NY = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class TwsInstrument:
    conid: int
    symbol: str
    name: str
    primary_exchange: str
    currency: str = "USD"
    sec_type: str = "STK"
    start_price: float = 100.0
    industry: str = ""
    category: str = ""


INSTRUMENTS = (
    TwsInstrument(756733, "SPY", "SPDR S&P 500 ETF TRUST", "ARCA", start_price=200.0, industry="Funds",
                  category="Equity Fund"),
    TwsInstrument(265598, "AAPL", "APPLE INC", "NASDAQ", start_price=80.0, industry="Technology",
                  category="Computers"),
    TwsInstrument(272093, "MSFT", "MICROSOFT CORP", "NASDAQ", start_price=150.0, industry="Technology",
                  category="Software"),
    TwsInstrument(320227571, "QQQ", "INVESCO QQQ TRUST SERIES 1", "NASDAQ", start_price=180.0,
                  industry="Funds", category="Equity Fund"),
    TwsInstrument(416904, "SPX", "S&P 500 Stock Index", "CBOE", sec_type="IND", start_price=2000.0),
    # two listings of one symbol: qualifyContracts without a primary exchange is ambiguous
    TwsInstrument(1001, "TWIN", "TWIN HOLDINGS A", "NYSE", start_price=50.0),
    TwsInstrument(1002, "TWIN", "TWIN HOLDINGS B", "NASDAQ", start_price=51.0),
)


def last_weekday_before(day: date) -> date:
    d = day - timedelta(days=1)
    while d.weekday() >= 5:
        d -= timedelta(days=1)
    return d


def daily_bars(inst: TwsInstrument, last_session: date, sessions: int) -> list[dict]:
    """``sessions`` weekday bars ending at ``last_session``; the same for the same symbol on every run."""
    rng = random.Random(zlib.crc32(inst.symbol.encode()) ^ inst.conid)
    days = weekdays_until(last_session, sessions)
    out, n = [], len(days)
    for i, d in enumerate(days):
        trend = inst.start_price * math.exp(0.0006 * i + 0.03 * math.sin(i / 23.0))
        boost = math.exp(0.004 * max(0, i - (n - 60)))  # the last 60 sessions rise faster
        close = round(trend * boost * (1 + rng.uniform(-0.004, 0.004)), 2)
        open_ = round(close * (1 - 0.004 * math.sin(i * 1.7)), 2)
        high = round(max(open_, close) * (1.004 + rng.uniform(0, 0.004)), 2)
        low = round(min(open_, close) * (0.996 - rng.uniform(0, 0.004)), 2)
        volume = 100_000 + 1000 * (i % 17) + rng.randrange(1000)
        out.append({"date": d, "open": open_, "high": high, "low": low, "close": close, "volume": volume})
    return out


def parse_duration_days(duration: str) -> int | None:
    """IB's durationStr (``"1 Y"``, ``"365 D"``, ``"6 M"``, ``"2 W"``, ``"86400 S"``) as calendar days."""
    parts = duration.strip().split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    n, unit = int(parts[0]), parts[1].upper()
    per = {"S": 1 / 86400, "D": 1, "W": 7, "M": 31, "Y": 366}.get(unit)
    return None if per is None or n <= 0 else max(1, math.ceil(n * per))


def parse_end_date(end: str, default: date) -> date | None:
    """The session date of reqHistoricalData's endDateTime (``""`` is now; ``"20240105 23:59:59 UTC"``,
    ``"20240105-21:00:00"``, ``"20240105 16:00:00 US/Eastern"``)."""
    s = end.strip()
    if not s:
        return default
    digits = s[:8]
    if not digits.isdigit():
        return None
    try:
        day = datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None
    rest = s[8:].strip().lstrip("-").split()
    if rest and rest[-1] == "UTC" and len(rest) >= 2:
        # a UTC instant: the session date is New York's date of that instant
        try:
            t = datetime.strptime(f"{digits} {rest[0]}", "%Y%m%d %H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
            return t.astimezone(NY).date()
        except ValueError:
            return None
    return day
