"""A fake TWS / IB Gateway: a real asyncio TCP server on 127.0.0.1 speaking the TWS socket protocol at server
version 178, on its own thread and event loop, so ib_async (or the adapter on it) talks to it as to a gateway.

Built from the documented shapes and ib_async 2.1.0's decoder (``shared/reference/tws-api.md``), not from a
capture: every frame in and out is logged at DEBUG on ``tests.fakes.tws`` (``<<<`` received, ``>>>`` sent,
fields comma separated like ib_async's own log) so a paper account's capture can be compared line by line.

IB's behaviour it keeps: the handshake, ``managedAccounts`` + ``nextValidId`` + the farm messages (2104, 2106,
2158) at startApi; the End message of every request; orderRef echoed in openOrder, execDetails and
completedOrder; permId stable across reconnects; orderId per clientId; a duplicate clientId gets 326 and is
closed; a working orderId reused from another connection gets 103 (the same connection modifies the order);
historical pacing (identical within 15 s, more than 5 for one contract in 2 s, more than 60 in 10 min: 162,
windows scaled by ``pacing_scale``); cancel answers orderStatus Cancelled and 202.

Fills by simple rules: an order is booked silently while ``transmit`` is false (``PendingSubmit``, shown in
the open-order lists) and goes live when a leg with ``transmit`` arrives (the parent and every booked child).
A live MKT order fills at once at the last close, a BUY LMT at or above it (a SELL LMT at or below it) at the
close; STP orders and bracket children stay working until ``fill()``. When a bracket child fills completely
its siblings are cancelled (the implicit OCA). Scenario hooks: ``reject_next_order``, ``partial_fills``,
``hold_next_order``/``release_held``, ``drop_connections``, ``refuse_connections``, ``connectivity``,
``rollback_next_valid_id``, ``pacing_violation_next``, ``book``. Test code only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.fakes.tws import wire
from tests.fakes.tws.accounts import account_values, ledger_values, summary_values
from tests.fakes.tws.book import (
    FakeTwsExecution,
    FakeTwsOrder,
    commission_fields,
    completed_order_values,
    contract_details_values,
    exec_values,
    open_order_values,
    order_status_fields,
    tws_time,
)
from tests.fakes.tws.market import (
    INSTRUMENTS,
    NY,
    TwsInstrument,
    daily_bars,
    last_weekday_before,
    parse_duration_days,
    parse_end_date,
)

log = logging.getLogger("tests.fakes.tws")

TEXT = {
    103: "Duplicate order id",
    162: "Historical Market Data Service error message:Historical data request pacing violation",
    200: "No security definition has been found for the request",
    202: "Order Canceled - reason:",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}
REJECT_TEXT = ("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
               "EQUITY WITH LOAN VALUE [0.00 USD] MUST EXCEED THE INITIAL MARGIN [5000.00 USD]")
FARMS = ((2104, "Market data farm connection is OK:usfarm"), (2106, "HMDS data farm connection is OK:ushmds"),
         (2158, "Sec-def data farm connection is OK:secdefnj"))
MAX_FRAME = 1 << 20  # a longer frame is not TWS's protocol: the connection is closed


class _Conn:
    def __init__(self, serial: int, writer: asyncio.StreamWriter):
        self.serial = serial
        self.writer = writer
        self.client_id: int | None = None
        self.next_valid = 1
        self.positions = False
        self.account_updates = False
        self.closed = False


class FakeTWS:
    """``with FakeTWS() as tws:`` then connect ib_async to ``tws.host``, ``tws.port``."""

    host = "127.0.0.1"

    def __init__(self, account: str = "DU1234567", server_version: int = wire.SERVER_VERSION,
                 instruments: list[TwsInstrument] | None = None, last_session: date | None = None, *,
                 pacing_scale: float = 1.0, sessions: int = 1000):
        if server_version != wire.SERVER_VERSION:
            raise ValueError(f"the fake's message layouts are those of server version {wire.SERVER_VERSION}")
        if sessions < 400:
            raise ValueError("sessions must be at least 400")
        self.account = account
        self.server_version = server_version
        self.instruments = list(instruments or INSTRUMENTS)
        self.last_session = last_session or last_weekday_before(datetime.now(NY).date())
        self.pacing_scale = pacing_scale
        self.sessions = sessions
        self.port = 0
        self._lock = threading.RLock()
        self._bars: dict[int, list[dict]] = {}
        self._calls: Counter[str] = Counter()
        self._orders: list[FakeTwsOrder] = []
        self._executions: list[FakeTwsExecution] = []
        self._positions: dict[str, tuple[float, float]] = {}
        self._cash = 100_000.0
        self._perm_ids = itertools.count(1_300_000_001)
        self._exec_seq = itertools.count(1)
        self._serials = itertools.count(1)
        self._conns: list[_Conn] = []
        self._tasks: set[asyncio.Task] = set()
        self._seen_client_ids: list[int] = []
        self._next_valid_ids: list[int] = []
        self.problems: list[str] = []  # frames the fake could not handle (tests assert it stays empty)
        self.unhandled: list[list[str]] = []  # requests of a kind the fake does not answer
        # scenario state
        self._reject_next: tuple[int, str] | None = None
        self._partials: list[float] | None = None
        self._hold_next = False
        self._held: list[list[FakeTwsOrder]] = []
        self._rollback: int | None = None
        self._pacing_forced = 0
        self._hist: deque[tuple[float, tuple, tuple]] = deque()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> FakeTWS:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, self.host, self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-tws", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake TWS did not start listening within 10 s")
        log.info("fake TWS listening on %s:%d (server version %d, account %s)", self.host, self.port,
                 self.server_version, self.account)
        return self

    def __exit__(self, *exc) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        with self._lock:
            for conn in list(self._conns):
                self._close(conn)
            if self._server is not None:
                self._server.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the fake's loop (where every frame is written) and wait for it."""
        assert self._loop is not None, "use the fake as a context manager"
        if threading.current_thread() is self._thread:
            with self._lock:
                return fn(*args)

        async def run() -> Any:
            with self._lock:
                return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    # -- the wire ------------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Conn(next(self._serials), writer)
        with self._lock:
            self._conns.append(conn)
        try:
            if await reader.readexactly(4) != b"API\0":
                log.warning("#%d: not the TWS API handshake; closed", conn.serial)
                return
            log.debug("<<< #%d %s", conn.serial, wire.shown(wire.split(await self._frame(reader))))
            with self._lock:
                self._send(conn, [self.server_version, datetime.now(NY).strftime("%Y%m%d %H:%M:%S") + " EST"])
            while not conn.closed:
                fields = wire.split(await self._frame(reader))
                log.debug("<<< #%d %s", conn.serial, wire.shown(fields))
                with self._lock:
                    self._dispatch(conn, fields)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            with self._lock:
                self._close(conn)
            self._tasks.discard(task)

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> bytes:
        (size,) = struct.unpack(">I", await reader.readexactly(4))
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes")
        return await reader.readexactly(size)

    def _send(self, conn: _Conn, fields: list) -> None:
        if conn.closed:
            return
        log.debug(">>> #%d %s", conn.serial, wire.shown(fields))
        conn.writer.write(wire.frame(fields))

    def _error(self, conn: _Conn, req_id: int, code: int, text: str) -> None:
        self._send(conn, [4, 2, req_id, code, text, ""])

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        if conn in self._conns:
            self._conns.remove(conn)
        try:
            conn.writer.close()
        except RuntimeError:  # the loop is closing
            pass
        log.debug("--- #%d closed (clientId %s)", conn.serial, conn.client_id)

    def _live(self) -> list[_Conn]:
        return [c for c in self._conns if c.client_id is not None and not c.closed]

    def _owners(self, o: FakeTwsOrder) -> list[_Conn]:
        return [c for c in self._live() if c.client_id == o.client_id]

    _HANDLERS = {
        71: ("startApi", "_start_api"), 3: ("placeOrder", "_place_order"), 4: ("cancelOrder", "_cancel_order"),
        5: ("reqOpenOrders", "_req_open_orders"), 6: ("reqAccountUpdates", "_req_account_updates"),
        7: ("reqExecutions", "_req_executions"), 8: ("reqIds", "_req_ids"),
        9: ("reqContractDetails", "_req_contract_details"), 15: ("reqAutoOpenOrders", None),
        16: ("reqAllOpenOrders", "_req_all_open_orders"), 17: ("reqManagedAccts", "_req_managed_accts"),
        20: ("reqHistoricalData", "_req_historical_data"), 25: ("cancelHistoricalData", None),
        49: ("reqCurrentTime", "_req_current_time"), 58: ("reqGlobalCancel", "_req_global_cancel"),
        59: ("reqMarketDataType", None), 61: ("reqPositions", "_req_positions"),
        62: ("reqAccountSummary", "_req_account_summary"), 63: ("cancelAccountSummary", None),
        64: ("cancelPositions", "_cancel_positions"), 76: ("reqAccountUpdatesMulti", "_req_account_updates_multi"),
        77: ("cancelAccountUpdatesMulti", None), 81: ("reqMatchingSymbols", "_req_matching_symbols"),
        99: ("reqCompletedOrders", "_req_completed_orders"),
    }

    def _dispatch(self, conn: _Conn, f: list[str]) -> None:
        try:
            msg = int(f[0])
        except (IndexError, ValueError):
            self.problems.append(f"#{conn.serial}: a frame without a message id: {f[:3]}")
            return
        if conn.client_id is None and msg != 71:
            self.problems.append(f"#{conn.serial}: message {msg} before startApi")
            return
        name, method = self._HANDLERS.get(msg, (f"msg{msg}", "_unhandled"))
        self._calls[name] += 1
        if method is None:
            return
        try:
            getattr(self, method)(conn, f)
        except (IndexError, ValueError) as e:
            log.exception("#%d: %s could not be handled", conn.serial, name)
            self.problems.append(f"#{conn.serial} {name}: {e!r} in {f[:6]}")
            at = {3: 1, 20: 1, 81: 1, 4: 2, 7: 2, 9: 2, 62: 2, 76: 2}.get(msg)
            req_id = int(f[at]) if at is not None and len(f) > at and f[at].lstrip("-").isdigit() else -1
            self._error(conn, req_id, 321, f"Error validating request:-'{name}' : cause - {e}")

    def _unhandled(self, conn: _Conn, f: list[str]) -> None:
        log.warning("#%d: no answer for message %s", conn.serial, f[0])
        self.unhandled.append(f)

    # -- connection ----------------------------------------------------------------------------------------
    def _start_api(self, conn: _Conn, f: list[str]) -> None:
        client_id = int(f[2])
        if any(c.client_id == client_id for c in self._live() if c is not conn):
            self._error(conn, -1, 326, TEXT[326])
            self._close(conn)
            return
        conn.client_id = client_id
        self._seen_client_ids.append(client_id)
        if self._rollback is not None:
            conn.next_valid, self._rollback = self._rollback, None
        else:
            conn.next_valid = max((o.order_id for o in self._orders if o.client_id == client_id), default=0) + 1
        self._next_valid_ids.append(conn.next_valid)
        self._send(conn, [15, 1, self.account])
        self._send(conn, [9, 1, conn.next_valid])
        for code, text in FARMS:
            self._error(conn, -1, code, text)

    def _req_ids(self, conn: _Conn, f: list[str]) -> None:
        self._send(conn, [9, 1, conn.next_valid])

    def _req_managed_accts(self, conn: _Conn, f: list[str]) -> None:
        self._send(conn, [15, 1, self.account])

    def _req_current_time(self, conn: _Conn, f: list[str]) -> None:
        self._send(conn, [49, 1, int(time.time())])

    # -- contracts and bars --------------------------------------------------------------------------------
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

    def _req_contract_details(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[2])
        found = self._matches(_int(f[3]), f[4], f[5], f[10], f[11], f[12])
        if not found:
            self._error(conn, req_id, 200, TEXT[200])
            return
        for inst in found:
            exchange = f[10] if f[10] else ("SMART" if inst.sec_type == "STK" else inst.primary_exchange)
            self._send(conn, wire.encode(wire.CONTRACT_DETAILS, contract_details_values(req_id, inst, exchange)))
        self._send(conn, [52, 1, req_id])

    def _req_matching_symbols(self, conn: _Conn, f: list[str]) -> None:
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

    def _req_historical_data(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[1])
        end, bar_size, duration, what = f[15], f[16], f[17], f[19]
        found = self._matches(_int(f[2]), f[3], f[4], f[9], f[10], f[11])
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

    # -- orders --------------------------------------------------------------------------------------------
    def _working(self, client_id: int, order_id: int) -> FakeTwsOrder | None:
        for o in reversed(self._orders):
            if o.client_id == client_id and o.order_id == order_id and o.working:
                return o
        return None

    def _report(self, o: FakeTwsOrder, status_only: bool = False) -> None:
        if o.held:
            return
        inst = self.instrument(o.conid)
        for c in self._owners(o):
            if not status_only:
                self._send(c, wire.encode(wire.OPEN_ORDER, open_order_values(o, inst)))
            self._send(c, order_status_fields(o))

    def _place_order(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[1])
        assert conn.client_id is not None
        found = self._matches(_int(f[2]), f[3], f[4], f[9], f[10], f[11])
        if len(found) != 1:
            self._error(conn, order_id, 200, TEXT[200])
            return
        inst = found[0]
        qty, lmt, aux, transmit, parent_id = float(f[17]), _price(f[19]), _price(f[20]), f[27] == "1", _int(f[28])
        existing = self._working(conn.client_id, order_id)
        if existing is not None:
            if existing.connection != conn.serial:
                self._error(conn, order_id, 103, TEXT[103])
                return
            existing.quantity, existing.lmt_price, existing.aux_price = qty, lmt, aux
            existing.order_ref, existing.tif = f[26], f[21] or existing.tif
            if existing.status != "PendingSubmit":
                self._report(existing)
                return
            if transmit:
                self._transmit(existing)
            return
        conn.next_valid = max(conn.next_valid, order_id + 1)
        o = FakeTwsOrder(order_id=order_id, perm_id=next(self._perm_ids), client_id=conn.client_id,
                         order_ref=f[26], parent_id=parent_id, action=f[16], order_type=f[18], quantity=qty,
                         lmt_price=lmt, aux_price=aux, tif=f[21] or "DAY", transmit=transmit,
                         status="PendingSubmit", account=f[23] or self.account, conid=inst.conid,
                         symbol=inst.symbol, exchange=f[9] or "SMART", oca_group=f[22], connection=conn.serial)
        parent = self._working(conn.client_id, parent_id) if parent_id else None
        problem = _check(o, inst, self.account)
        if parent_id and parent is None:
            problem = (201, "Order rejected - reason:Parent order is being cancelled.")
        if self._reject_next is not None:
            problem, self._reject_next = self._reject_next, None
        self._orders.append(o)
        if problem is not None:
            o.status, o.why, o.completed_time = "Inactive", problem[1], tws_time(datetime.now(UTC))
            self._error(conn, order_id, *problem)
            return
        if parent is not None:
            o.parent_perm_id = parent.perm_id
        if transmit:
            self._transmit(o)

    def _transmit(self, o: FakeTwsOrder) -> None:
        """``o`` arrives with transmit: it goes live with its booked parent and booked siblings."""
        head = self._by_perm(o.parent_perm_id) if o.parent_perm_id else o
        group = [head] if head is not None and head.status == "PendingSubmit" else []
        group += [k for k in self._orders if k.parent_perm_id and k.parent_perm_id == o.parent_perm_id
                  and k.status == "PendingSubmit" and k is not head]
        if o not in group:
            group.append(o)
        for k in group:
            k.transmit = True
        if self._hold_next:
            self._hold_next = False
            for k in group:
                k.held, k.status = True, "PreSubmitted"
            self._held.append(group)
            return
        self._activate(group)

    def _activate(self, group: list[FakeTwsOrder]) -> None:
        for k in group:
            k.held = False
            if not k.working:
                continue
            parent = self._by_perm(k.parent_perm_id) if k.parent_perm_id else None
            waiting = parent is not None and parent.status != "Filled"
            k.status = "PreSubmitted" if waiting or k.order_type == "STP" else "Submitted"
            self._report(k)
        for k in group:
            if k.working and not k.parent_perm_id and _marketable(k, self.last_close(k.symbol)):
                pieces, self._partials = self._partials or [k.remaining], None
                for q in pieces:
                    if k.remaining <= 0:
                        break
                    self._execute(k, min(q, k.remaining), self.last_close(k.symbol))

    def _by_perm(self, perm_id: int) -> FakeTwsOrder | None:
        return next((k for k in self._orders if k.perm_id == perm_id), None)

    def _execute(self, o: FakeTwsOrder, q: float, price: float) -> None:
        inst = self.instrument(o.conid)
        o.avg_fill_price = round((o.avg_fill_price * o.filled + price * q) / (o.filled + q), 6)
        o.filled += q
        o.last_fill_price = price
        side = "BOT" if o.action == "BUY" else "SLD"
        realized = self._apply_position(inst, side, q, price)
        commission = round(max(1.0, 0.005 * q), 2)
        self._cash += (-q * price if side == "BOT" else q * price) - commission
        now = datetime.now(UTC)
        e = FakeTwsExecution(exec_id=f"0000e0d5.{o.perm_id:08x}.{next(self._exec_seq):02d}.01",
                             perm_id=o.perm_id, order_id=o.order_id, client_id=o.client_id, order_ref=o.order_ref,
                             side=side, shares=q, price=price, time=now, commission=commission, conid=inst.conid,
                             symbol=inst.symbol, account=o.account, cum_qty=o.filled, avg_price=o.avg_fill_price,
                             exchange=inst.primary_exchange, realized_pnl=realized)
        self._executions.append(e)
        if o.remaining <= 1e-9:
            o.status, o.completed_time = "Filled", tws_time(now)
        else:
            o.status = "Submitted"
        if not o.held:
            for c in self._owners(o):
                self._send(c, wire.encode(wire.EXEC_DETAILS, exec_values(-1, e, inst)))
            self._report(o)
            for c in self._owners(o):
                self._send(c, commission_fields(e))
        self._position_updates(inst)
        if o.status != "Filled":
            return
        for child in [k for k in self._orders if k.parent_perm_id == o.perm_id and k.working and k.transmit]:
            child.status = "PreSubmitted" if child.order_type == "STP" else "Submitted"
            self._report(child, status_only=True)
        if o.parent_perm_id:  # a bracket child filled: its siblings are one-cancels-all
            for sib in [k for k in self._orders if k.parent_perm_id == o.parent_perm_id and k is not o and k.working]:
                self._cancel(sib)

    def _apply_position(self, inst: TwsInstrument, side: str, q: float, price: float) -> float | None:
        qty, avg = self._positions.get(inst.symbol, (0.0, 0.0))
        signed = q if side == "BOT" else -q
        realized = None
        if qty == 0 or (qty > 0) == (signed > 0):
            new = qty + signed
            avg = (abs(qty) * avg + q * price) / abs(new)
        else:
            closing = min(q, abs(qty))
            realized = (price - avg) * closing * (1 if qty > 0 else -1)
            new = qty + signed
            avg = 0.0 if abs(new) < 1e-9 else (avg if (new > 0) == (qty > 0) else price)
        if abs(new) < 1e-9:
            self._positions.pop(inst.symbol, None)
        else:
            self._positions[inst.symbol] = (new, round(avg, 6))
        return realized

    def _position_updates(self, inst: TwsInstrument) -> None:
        qty, avg = self._positions.get(inst.symbol, (0.0, 0.0))
        for c in self._live():
            if c.positions:
                self._send(c, self._position_fields(inst, qty, avg))
            if c.account_updates:
                self._send(c, self._portfolio_fields(inst, qty, avg))
                for tag, value, cur in account_values(self._snapshot()):
                    self._send(c, [6, 2, tag, value, cur, self.account])

    def _position_fields(self, inst: TwsInstrument, qty: float, avg: float) -> list:
        return [61, 3, self.account, inst.conid, inst.symbol, inst.sec_type, "", 0, "", "", "", inst.currency,
                inst.symbol, inst.symbol, qty, avg]

    def _portfolio_fields(self, inst: TwsInstrument, qty: float, avg: float) -> list:
        close = self.last_close(inst.symbol)
        unrealized = round((close - avg) * qty, 2) if qty else 0
        return [7, 8, inst.conid, inst.symbol, inst.sec_type, "", 0, "", "", inst.primary_exchange, inst.currency,
                inst.symbol, inst.symbol, qty, close, round(close * qty, 2), avg, unrealized, 0, self.account]

    def _cancel(self, o: FakeTwsOrder) -> None:
        o.status, o.completed_time = "Cancelled", tws_time(datetime.now(UTC))
        if not o.held:
            self._report(o, status_only=True)
            for c in self._owners(o):
                self._error(c, o.order_id, 202, TEXT[202])
        o.held = False
        for child in [k for k in self._orders if k.parent_perm_id == o.perm_id and k.working]:
            self._cancel(child)

    def _cancel_order(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[2])
        assert conn.client_id is not None
        o = self._working(conn.client_id, order_id)
        if o is not None:
            self._cancel(o)
            return
        done = [k for k in self._orders if k.client_id == conn.client_id and k.order_id == order_id]
        if done:
            self._error(conn, order_id, 10148, f"OrderId {order_id} that needs to be cancelled cannot be "
                                               f"cancelled, state: {done[-1].status}.")
        else:
            self._error(conn, order_id, 135, f"Can't find order with id ={order_id}")

    def _req_global_cancel(self, conn: _Conn, f: list[str]) -> None:
        for o in [k for k in self._orders if k.working]:
            self._cancel(o)

    def _send_open(self, conn: _Conn, orders: list[FakeTwsOrder]) -> None:
        for o in orders:
            inst = self.instrument(o.conid)
            self._send(conn, wire.encode(wire.OPEN_ORDER, open_order_values(o, inst)))
            self._send(conn, order_status_fields(o))
        self._send(conn, [53, 1])

    def _req_open_orders(self, conn: _Conn, f: list[str]) -> None:
        self._send_open(conn, [o for o in self._orders if o.working and o.client_id == conn.client_id])

    def _req_all_open_orders(self, conn: _Conn, f: list[str]) -> None:
        self._send_open(conn, [o for o in self._orders if o.working])

    def _req_completed_orders(self, conn: _Conn, f: list[str]) -> None:
        for o in [k for k in self._orders if not k.working]:
            self._send(conn, wire.encode(wire.COMPLETED_ORDER, completed_order_values(o, self.instrument(o.conid))))
        self._send(conn, [102])

    def _req_executions(self, conn: _Conn, f: list[str]) -> None:
        req_id, client_id, acct, since, symbol, sec_type, exchange, side = (
            int(f[2]), _int(f[3]), f[4], f[5], f[6], f[7], f[8], f[9])
        after = _filter_time(since)
        for e in self._executions:
            if ((client_id and e.client_id != client_id) or (acct and e.account != acct)
                    or (symbol and e.symbol != symbol.upper()) or (sec_type and sec_type != "STK")
                    or (exchange and exchange != e.exchange) or (side and not _side_matches(side, e.side))
                    or (after is not None and e.time < after)):
                continue
            self._send(conn, wire.encode(wire.EXEC_DETAILS, exec_values(req_id, e, self.instrument(e.conid))))
            self._send(conn, commission_fields(e))
        self._send(conn, [55, 1, req_id])

    # -- account -------------------------------------------------------------------------------------------
    def _snapshot(self) -> dict:
        marks = {s: self.last_close(s) for s in self._positions}
        return {"account": self.account, "cash": self._cash, "positions": dict(self._positions), "marks": marks}

    def _req_positions(self, conn: _Conn, f: list[str]) -> None:
        conn.positions = True
        for symbol, (qty, avg) in self._positions.items():
            self._send(conn, self._position_fields(self.instrument(symbol), qty, avg))
        self._send(conn, [62, 1])

    def _cancel_positions(self, conn: _Conn, f: list[str]) -> None:
        conn.positions = False

    def _req_account_updates(self, conn: _Conn, f: list[str]) -> None:
        conn.account_updates = f[2] == "1"
        if not conn.account_updates:
            return
        for tag, value, cur in account_values(self._snapshot()):
            self._send(conn, [6, 2, tag, value, cur, self.account])
        for symbol, (qty, avg) in self._positions.items():
            self._send(conn, self._portfolio_fields(self.instrument(symbol), qty, avg))
        self._send(conn, [8, 1, datetime.now(NY).strftime("%H:%M")])
        self._send(conn, [54, 1, self.account])

    def _req_account_updates_multi(self, conn: _Conn, f: list[str]) -> None:
        req_id, model = int(f[2]), f[4]
        for tag, value, cur in account_values(self._snapshot()):
            self._send(conn, [73, 1, req_id, self.account, model, tag, value, cur])
        self._send(conn, [74, 1, req_id])

    def _req_account_summary(self, conn: _Conn, f: list[str]) -> None:
        req_id, tags = int(f[2]), [t.strip() for t in f[4].split(",") if t.strip()]
        snap = self._snapshot()
        values = summary_values(snap)
        for tag in tags:
            if tag.startswith("$LEDGER"):
                rows = ledger_values(snap, tag.partition(":")[2] or "BASE")
            else:
                rows = [(tag, *values[tag])] if tag in values else []
            for name, value, cur in rows:
                self._send(conn, [63, 1, req_id, self.account, name, value, cur])
        self._send(conn, [64, 1, req_id])

    # -- what the fake holds (thread-safe reads) -----------------------------------------------------------
    @property
    def orders(self) -> list[FakeTwsOrder]:
        with self._lock:
            return list(self._orders)

    def order_by_ref(self, order_ref: str) -> FakeTwsOrder | None:
        """The latest order placed with this orderRef."""
        with self._lock:
            return next((o for o in reversed(self._orders) if o.order_ref == order_ref), None)

    @property
    def executions(self) -> list[FakeTwsExecution]:
        with self._lock:
            return list(self._executions)

    @property
    def positions(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            return dict(self._positions)

    @property
    def cash(self) -> float:
        with self._lock:
            return self._cash

    def net_liquidation(self) -> float:
        with self._lock:
            return self._cash + sum(q * self.last_close(s) for s, (q, _) in self._positions.items())

    def count(self, name: str) -> int:
        with self._lock:
            return self._calls[name]

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._live())

    @property
    def client_ids(self) -> list[int]:
        """The clientIds connected now."""
        with self._lock:
            return sorted(c.client_id for c in self._live() if c.client_id is not None)

    @property
    def seen_client_ids(self) -> list[int]:
        """Every clientId that completed startApi, in order (reconnects repeat theirs)."""
        with self._lock:
            return list(self._seen_client_ids)

    @property
    def next_valid_ids(self) -> list[int]:
        """The nextValidId sent to each connection at startApi, in order."""
        with self._lock:
            return list(self._next_valid_ids)

    def wait_until(self, predicate: Callable[[FakeTWS], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate(self)`` until it holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake TWS did not reach the expected state within {timeout} s")
            time.sleep(0.01)

    # -- test controls -------------------------------------------------------------------------------------
    def fill(self, order_ref: str, price: float | None = None, quantity: float | None = None) -> None:
        """Fill the working order with this orderRef (all of it, or ``quantity``) at ``price`` (default: its
        limit for LMT, its stop for STP, the last close for MKT)."""

        def run() -> None:
            o = next((k for k in reversed(self._orders) if k.order_ref == order_ref and k.working), None)
            if o is None:
                raise ValueError(f"no working order with orderRef {order_ref!r} at the fake TWS")
            px = price if price is not None else {"LMT": o.lmt_price, "STP": o.aux_price}.get(o.order_type)
            q = o.remaining if quantity is None else quantity
            if not 0 < q <= o.remaining + 1e-9:
                raise ValueError(f"fill quantity {q} for an order with {o.remaining} remaining")
            if o.status == "PendingSubmit":
                raise ValueError(f"order {order_ref!r} was never transmitted")
            self._execute(o, q, px if px is not None else self.last_close(o.symbol))

        self._call(run)

    def reject_next_order(self, code: int = 201, text: str = REJECT_TEXT) -> None:
        with self._lock:
            self._reject_next = (code, text)

    def partial_fills(self, quantities: list[float]) -> None:
        if not quantities or any(q <= 0 for q in quantities):
            raise ValueError("partial fills need positive quantities")
        with self._lock:
            self._partials = list(quantities)

    def hold_next_order(self) -> None:
        """The next order that goes live is booked (visible in the open-order lists as PreSubmitted) but
        nothing is answered and nothing fills until ``release_held()``."""
        with self._lock:
            self._hold_next = True

    def release_held(self) -> None:
        def run() -> None:
            groups, self._held = self._held, []
            for group in groups:
                self._activate(group)

        self._call(run)

    def drop_connections(self) -> None:
        """Close every client socket now (the server keeps listening)."""
        self._call(lambda: [self._close(c) for c in list(self._conns)])

    def refuse_connections(self, seconds: float) -> None:
        """Like the gateway's daily restart: every connection is closed and the port refuses connections for
        ``seconds``, then listens again on the same port."""

        def run() -> None:
            for c in list(self._conns):
                self._close(c)
            assert self._server is not None and self._loop is not None
            self._server.close()
            self._loop.call_later(seconds, lambda: self._loop.create_task(self._reopen()))

        self._call(run)

    async def _reopen(self) -> None:
        for _ in range(100):
            try:
                self._server = await asyncio.start_server(self._serve, self.host, self.port)
                log.info("fake TWS listening again on %s:%d", self.host, self.port)
                return
            except OSError:
                await asyncio.sleep(0.05)
        log.error("fake TWS could not listen on port %d again", self.port)

    def connectivity(self, code: int) -> None:
        """Send IB's connectivity message ``code`` (1100 lost, 1101 restored with data lost, 1102 restored
        with data maintained) to every connected client."""
        if code not in (1100, 1101, 1102):
            raise ValueError("connectivity codes are 1100, 1101 and 1102")
        self._call(lambda: [self._error(c, -1, code, TEXT[code]) for c in self._live()])

    def rollback_next_valid_id(self, to: int) -> None:
        with self._lock:
            self._rollback = to

    def pacing_violation_next(self, n: int = 1) -> None:
        with self._lock:
            self._pacing_forced = n

    def book(self, symbol: str, action: str, quantity: float, order_type: str = "LMT",
             lmt_price: float | None = None, order_ref: str | None = None, client_id: int = 0) -> FakeTwsOrder:
        """A working order placed by another program (API clientId ``client_id``), priced away from the
        market by default so it stays working."""

        def run() -> FakeTwsOrder:
            inst = self.instrument(symbol)
            close = self.last_close(inst.symbol)
            price = lmt_price if lmt_price is not None else round(close * (0.5 if action == "BUY" else 1.5), 2)
            order_id = max((o.order_id for o in self._orders if o.client_id == client_id), default=0) + 1
            o = FakeTwsOrder(order_id=order_id, perm_id=next(self._perm_ids), client_id=client_id,
                             order_ref=order_ref or "", parent_id=0, action=action, order_type=order_type,
                             quantity=quantity, lmt_price=price if order_type == "LMT" else None,
                             aux_price=price if order_type == "STP" else None, tif="GTC", transmit=True,
                             status="Submitted" if order_type == "LMT" else "PreSubmitted", account=self.account,
                             conid=inst.conid, symbol=inst.symbol)
            self._orders.append(o)
            self._report(o)
            return o

        return self._call(run)


def _int(s: str) -> int:
    return int(s) if s else 0


def _price(s: str) -> float | None:
    if not s:
        return None
    v = float(s)
    return None if v >= 1e300 else v


def _check(o: FakeTwsOrder, inst: TwsInstrument, account: str) -> tuple[int, str] | None:
    if o.account != account:
        return 321, f"Error validating request:-'bN' : cause - The account code {o.account} is invalid"
    if inst.sec_type != "STK":
        return 201, f"Order rejected - reason:The contract is not available for trading ({inst.sec_type})"
    if o.action not in ("BUY", "SELL"):
        return 321, f"Error validating request:-'bN' : cause - Invalid side {o.action!r}"
    if o.order_type not in ("MKT", "LMT", "STP"):
        return 201, f"Order rejected - reason:the fake TWS takes MKT, LMT and STP orders, not {o.order_type!r}"
    if o.quantity <= 0:
        return 201, "Order rejected - reason:The order size must be positive"
    if o.order_type == "LMT" and (o.lmt_price is None or o.lmt_price <= 0):
        return 201, "Order rejected - reason:The limit price is missing"
    if o.order_type == "STP" and (o.aux_price is None or o.aux_price <= 0):
        return 201, "Order rejected - reason:The stop price is missing"
    return None


def _marketable(o: FakeTwsOrder, close: float) -> bool:
    if o.order_type == "MKT":
        return True
    if o.order_type == "LMT" and o.lmt_price is not None:
        return o.lmt_price >= close if o.action == "BUY" else o.lmt_price <= close
    return False


def _side_matches(wanted: str, side: str) -> bool:
    return side == {"BUY": "BOT", "SELL": "SLD"}.get(wanted.upper(), wanted.upper())


def _filter_time(s: str) -> datetime | None:
    """ExecutionFilter.time (``yyyymmdd hh:mm:ss``, New York time unless it names UTC)."""
    s = s.strip()
    if not s:
        return None
    try:
        t = datetime.strptime(s.replace("-", " ")[:17], "%Y%m%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"execution filter time {s!r}") from None
    return t.replace(tzinfo=UTC if s.endswith("UTC") or "-" in s else NY)
