"""Reading IBKR's documented shapes, with their type quirks, into plain values.

Quirks handled here: conids are strings in ``secdef/search`` and integers elsewhere; numbers arrive as
strings (sometimes with thousands separators); timestamps mix epoch milliseconds (most), epoch seconds
(the ledger), ``YYMMDDhhmmss`` and ``YYYYMMDD-hh:mm:ss`` (UTC); order types come as ``LMT`` in requests,
``Limit``/``LIMIT`` in lists; sides as ``BUY``/``SELL`` or ``B``/``S``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tradetrail.domain.market_hours import EXCHANGE_TZ, SESSION_CLOSE
from tradetrail.ibkr.errors import BadReply

NEW_YORK = EXCHANGE_TZ
# Primary exchanges of US listings as IBKR names them (secdef/search ``description``, contract ``exchange``).
US_EXCHANGES = frozenset({"NASDAQ", "NYSE", "ARCA", "AMEX", "BATS", "IEX", "NYSEARCA", "NYSE ARCA", "NYSENAT",
                          "CBOE", "BYX", "EDGX", "PINK", "OTC", "NMS"})

_TYPES = {"LMT": "LMT", "LIMIT": "LMT", "MKT": "MKT", "MARKET": "MKT", "STP": "STP", "STOP": "STP"}
_SIDES = {"B": "BUY", "BUY": "BUY", "BOT": "BUY", "S": "SELL", "SELL": "SELL", "SLD": "SELL"}
# IBKR order statuses → our vocabulary (PendingCancel is still working until IBKR says Cancelled).
_STATUS = {"PENDINGSUBMIT": "SUBMITTED", "PRESUBMITTED": "SUBMITTED", "SUBMITTED": "SUBMITTED",
           "PENDINGCANCEL": "SUBMITTED", "FILLED": "FILLED", "CANCELLED": "CANCELLED", "INACTIVE": "REJECTED",
           "APICANCELLED": "CANCELLED", "REJECTED": "REJECTED"}


def num(value: Any, what: str = "number") -> float | None:
    """A number from IBKR's number-or-string fields ("1,234.5" included); None for empty."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        raise BadReply(f"IBKR sent {value!r} where a {what} belongs") from None


def conid_of(value: Any) -> int:
    """A conid from either its string form (secdef/search) or its integer form (everywhere else)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise BadReply(f"IBKR sent {value!r} where a contract id belongs") from None


def epoch(value: Any) -> datetime | None:
    """Epoch seconds or milliseconds (IBKR uses both: the ledger in seconds) → UTC datetime."""
    v = num(value, "timestamp")
    if v is None or v <= 0:
        return None
    return datetime.fromtimestamp(v / 1000 if v > 1e11 else v, UTC)


def ib_time(value: str | None) -> datetime | None:
    """``YYYYMMDD-hh:mm:ss`` (trades, UTC) or ``YYMMDDhhmmss`` (live orders) → UTC datetime."""
    if not value:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S", "%y%m%d%H%M%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise BadReply(f"IBKR sent an unreadable time {value!r}")


def order_type(value: Any) -> str:
    text = str(value or "").upper().replace(" ", "")
    return _TYPES.get(text, text)


def side(value: Any) -> str:
    text = str(value or "").upper()
    if text not in _SIDES:
        raise BadReply(f"IBKR sent an unknown order side {value!r}")
    return _SIDES[text]


def status(value: Any, filled: float) -> str:
    """Our order state for an IBKR status; a working order with fills is PARTIALLY_FILLED."""
    text = str(value or "").replace("_", "").replace(" ", "").upper()
    if text not in _STATUS:
        raise BadReply(f"IBKR sent an unknown order status {value!r}")
    ours = _STATUS[text]
    return "PARTIALLY_FILLED" if ours == "SUBMITTED" and filled > 0 else ours


def daily_stamp(t_ms: Any) -> datetime:
    """When a daily bar starting at ``t`` (epoch ms) is complete: the first 16:00 New York at or after
    ``t`` + 6 h 30 (a US session opens 09:30 and closes 16:00). For a US stock that is its own close; for
    an exchange in another time zone it is a later, never an earlier, moment, so no run sees a bar before
    it is complete."""
    start = epoch(t_ms)
    if start is None:
        raise BadReply(f"IBKR sent a bar without a time ({t_ms!r})")
    earliest = (start + timedelta(hours=6, minutes=30)).astimezone(NEW_YORK)
    close = datetime.combine(earliest.date(), SESSION_CLOSE, tzinfo=NEW_YORK)
    if close < earliest:
        close += timedelta(days=1)
    return close.astimezone(UTC)


def is_us(exchange: str, currency: str | None = "USD") -> bool:
    ex = (exchange or "").upper()
    return (currency in (None, "", "USD")) and (ex in US_EXCHANGES or ex.split(".")[0] in US_EXCHANGES)
