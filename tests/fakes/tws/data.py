"""The fake TWS's market data desk: contract details and symbol search, daily bars with IB's historical
pacing (162), and the data scenario hooks. A mixin of ``FakeTWS``, run on its loop with its lock held."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.fakes.tws import wire
from tests.fakes.tws.book import contract_details_values
from tests.fakes.tws.conn import Conn
from tests.fakes.tws.market import TwsInstrument, daily_bars, parse_duration_days, parse_end_date
from tests.fakes.tws.wire import to_int

TEXT = {
    162: "Historical Market Data Service error message:Historical data request pacing violation",
    200: "No security definition has been found for the request",
    354: "Requested market data is not subscribed. Check API status by selecting the Account menu then under "
         "Management choose Market Data Subscription Manager and/or Market Data Subscriptions.",
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
}
WARNINGS = (10167,)  # the data follows the message
# tick types: live, and what reqMarketDataType(3 or 4) turns them into
PRICE_TICKS = {"bid": (1, 66), "ask": (2, 67), "last": (4, 68), "high": (6, 72), "low": (7, 73), "close": (9, 75),
               "open": (14, 76)}
SIZE_TICKS = {"bid": (0, 69), "ask": (3, 70), "last": (5, 71), "volume": (8, 74)}


class DataDesk:
    def _matches(self, conid: int, symbol: str, sec_type: str, exchange: str, primary: str,
                 currency: str) -> list[TwsInstrument]:
        if conid:
            return [i for i in self.instruments if i.conid == conid]
        return [i for i in self.instruments
                if i.symbol == symbol.upper() and sec_type in ("", i.sec_type) and currency in ("", i.currency)
                and primary in ("", i.primary_exchange)
                and (exchange in ("", i.primary_exchange) or (exchange == "SMART" and i.sec_type == "STK"))]

    def instrument(self, symbol_or_conid: str | int) -> TwsInstrument:
        for i in self.instruments:
            if symbol_or_conid in (i.symbol, i.conid):
                return i
        raise KeyError(f"the fake TWS has no instrument {symbol_or_conid!r}")

    def _req_contract_details(self, conn: Conn, f: list[str]) -> None:
        req_id = int(f[2])
        found = self._matches(to_int(f[3]), f[4], f[5], f[10], f[11], f[12])
        if not found:
            self._error(conn, req_id, 200, TEXT[200])
            return
        for inst in found:
            exchange = f[10] if f[10] else ("SMART" if inst.sec_type == "STK" else inst.primary_exchange)
            self._send(conn, wire.encode(wire.CONTRACT_DETAILS, contract_details_values(req_id, inst, exchange)))
        self._send(conn, [52, 1, req_id])

    def _req_matching_symbols(self, conn: Conn, f: list[str]) -> None:
        req_id, pattern = int(f[1]), f[2].strip()
        found = [i for i in self.instruments if pattern and (i.symbol.startswith(pattern.upper())
                                                             or pattern.lower() in i.name.lower())]
        out: list = [79, req_id, len(found)]
        for i in found:
            out += [i.conid, i.symbol, i.sec_type, i.primary_exchange, i.currency, 0, i.name, ""]
        self._send(conn, out)

    def bars(self, symbol: str) -> list[dict]:
        """The whole daily series of ``symbol`` (weekdays up to ``last_session``; the same on every run)."""
        inst = self.instrument(symbol)
        with self._lock:
            if inst.conid not in self._bars:
                self._bars[inst.conid] = daily_bars(inst, self.last_session, self.sessions)
            return self._bars[inst.conid]

    def last_close(self, symbol: str) -> float:
        return self.bars(symbol)[-1]["close"]

    def _pacing(self, ident: tuple, same: tuple) -> bool:
        """Whether a historical request now breaks IB's pacing; the request is recorded when it does not."""
        now, s = time.monotonic(), self.pacing_scale
        while self._hist and now - self._hist[0][0] > 600 * s:
            self._hist.popleft()
        if any(i == ident and now - t < 15 * s for t, i, _ in self._hist):
            return True
        if sum(1 for t, _, k in self._hist if k == same and now - t < 2 * s) >= 5:
            return True
        if len(self._hist) >= 60:
            return True
        self._hist.append((now, ident, same))
        return False

    def _req_historical_data(self, conn: Conn, f: list[str]) -> None:
        req_id = int(f[1])
        end, bar_size, duration, what = f[15], f[16], f[17], f[19]
        found = self._matches(to_int(f[2]), f[3], f[4], f[9], f[10], f[11])
        if len(found) != 1:
            self._error(conn, req_id, 200, TEXT[200])
            return
        inst = found[0]
        days = parse_duration_days(duration)
        if days is None:
            self._error(conn, req_id, 321, f"Error validating request:-'bP' : cause - Historical data query "
                                           f"duration {duration!r} is invalid")
            return
        if bar_size.strip() not in ("1 day", "1 D"):
            self._error(conn, req_id, 321, f"Error validating request:-'bP' : cause - the fake TWS answers "
                                           f"daily bars only, not {bar_size!r}")
            return
        if self._data_error_answers(conn, req_id):
            return
        if self._pacing_forced > 0:
            self._pacing_forced -= 1
            self._error(conn, req_id, 162, TEXT[162])
            return
        if self._pacing((inst.conid, end, duration, bar_size, what, f[18]), (inst.conid, f[9], what)):
            self._error(conn, req_id, 162, TEXT[162])
            return
        last = parse_end_date(end, self.last_session)
        if last is None:
            self._error(conn, req_id, 321, f"Error validating request:-'bP' : cause - end date/time {end!r} "
                                           f"is invalid")
            return
        first = last - timedelta(days=days)
        rows = [b for b in self.bars(inst.symbol) if first < b["date"] <= last]
        if not rows:
            self._error(conn, req_id, 162, "Historical Market Data Service error message:HMDS query returned no "
                                           f"data: {inst.symbol}@{f[9] or 'SMART'} {what.title()}")
            return
        out: list = [17, req_id, f"{first:%Y%m%d}  00:00:00", f"{last:%Y%m%d}  23:59:59", len(rows)]
        for b in rows:
            wap = round((b["high"] + b["low"] + b["close"]) / 3, 4)
            out += [f"{b['date']:%Y%m%d}", b["open"], b["high"], b["low"], b["close"], b["volume"], wap,
                    max(1, b["volume"] // 100)]
        self._send(conn, out)


    def pacing_violation_next(self, n: int = 1) -> None:
        with self._lock:
            self._pacing_forced = n

    def market_data_error_next(self, code: int, text: str | None = None) -> None:
        """The next reqMktData or reqHistoricalData meets error ``code`` (354, 10168: no data; 10167: a warning,
        the data follows; any other code with ``text``)."""
        if text is None and code not in TEXT:
            raise ValueError(f"give the text of error {code}")
        with self._lock:
            self._data_error = (code, text or TEXT[code])

    def _data_error_answers(self, conn: Conn, req_id: int) -> bool:
        """Send the armed market-data error; whether it ends the request."""
        if self._data_error is None:
            return False
        (code, text), self._data_error = self._data_error, None
        self._error(conn, req_id, code, text)
        return code not in WARNINGS

    def _req_market_data_type(self, conn: Conn, f: list[str]) -> None:
        conn.market_data_type = int(f[2])

    def _req_mkt_data(self, conn: Conn, f: list[str]) -> None:
        """One round of ticks from the last session (live or delayed tick types as reqMarketDataType asked);
        tickSnapshotEnd when a snapshot was asked."""
        req_id = int(f[2])
        found = self._matches(to_int(f[3]), f[4], f[5], f[10], f[11], f[12])
        if len(found) != 1:
            self._error(conn, req_id, 200, TEXT[200])
            return
        snapshot = f[17 if f[15] == "0" else 20] == "1"
        if self._data_error_answers(conn, req_id):
            return
        *_, before, last = self.bars(found[0].symbol)
        delayed = conn.market_data_type in (3, 4)
        if conn.market_data_type != 1:
            self._send(conn, [58, 1, req_id, conn.market_data_type])
        prices = {"bid": round(last["close"] - 0.01, 2), "ask": round(last["close"] + 0.01, 2),
                  "last": last["close"], "high": last["high"], "low": last["low"], "close": before["close"],
                  "open": last["open"]}
        sizes = {"bid": 100, "ask": 100, "last": 100}
        for name, price in prices.items():
            self._send(conn, [1, 6, req_id, PRICE_TICKS[name][delayed], price, sizes.get(name, 0), 0])
        self._send(conn, [2, 6, req_id, SIZE_TICKS["volume"][delayed], last["volume"]])
        if snapshot:
            self._send(conn, [57, 1, req_id])
