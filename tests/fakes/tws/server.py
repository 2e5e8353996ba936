"""A fake TWS / IB Gateway: a real asyncio TCP server on 127.0.0.1 speaking the TWS socket protocol at server
version 178, on its own thread and event loop, so ib_async (or the adapter on it) talks to it as to a gateway.

Built from the documented shapes and ib_async 2.1.0's decoder (``shared/reference/tws-api.md``), not from a
capture: every frame in and out is logged at DEBUG on ``tests.fakes.tws`` (``<<<`` received, ``>>>`` sent,
fields comma separated like ib_async's own log) so a paper account's capture can be compared line by line.

The desks are mixins in their own modules: ``orders`` (placeOrder, fills, brackets, cancel, the order
queries and hooks), ``accounts`` (positions, account summary and updates), ``data`` (contracts, bars,
pacing, market data); this module holds the server, the connections and the connection hooks.

IB's behaviour it keeps: the handshake, ``managedAccounts`` + ``nextValidId`` + the farm messages (2104, 2106,
2158) at startApi; the End message of every request; orderRef echoed in openOrder, execDetails and
completedOrder; permId stable across reconnects; orderId per clientId; a duplicate clientId gets 326 and is
closed; a working orderId reused from another connection gets 103 (the same connection modifies the order);
at most two account summary subscriptions per client (322 for a third);
historical pacing (identical within 15 s, more than 5 for one contract in 2 s, more than 60 in 10 min: 162,
windows scaled by ``pacing_scale``); cancel answers orderStatus Cancelled and 202.

Fills by simple rules: an order is booked silently while ``transmit`` is false (``PendingSubmit``, shown in
the open-order lists) and goes live when a leg with ``transmit`` arrives (the parent and every booked child).
A live MKT order fills at once at the last close, a BUY LMT at or above it (a SELL LMT at or below it) at the
close; STP orders and bracket children stay working until ``fill()``. When a bracket child fills completely
its siblings are cancelled (the implicit OCA). Scenario hooks: ``reject_next_order``, ``partial_fills``,
``hold_next_order``/``release_held``, ``drop_connections``, ``refuse_connections``, ``connectivity``,
``connectivity_at_start``, ``drop_after_start``, ``rollback_next_valid_id``, ``delay_answers``,
``drop_at_placement``, ``hide_untransmitted``, ``pacing_violation_next``, ``market_data_error_next``,
``book``. Test code only.
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
from datetime import date, datetime
from typing import Any

from tests.fakes.tws import data, orders, wire
from tests.fakes.tws.accounts import AccountDesk
from tests.fakes.tws.book import FakeTwsExecution, FakeTwsOrder
from tests.fakes.tws.conn import Conn
from tests.fakes.tws.data import DataDesk
from tests.fakes.tws.market import INSTRUMENTS, NY, TwsInstrument, last_weekday_before
from tests.fakes.tws.orders import OrderDesk
from tests.fakes.tws.quirks import QuirkDesk

log = logging.getLogger("tests.fakes.tws")

TEXT = {
    **orders.TEXT, **data.TEXT,
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
}
FARMS = ((2104, "Market data farm connection is OK:usfarm"), (2106, "HMDS data farm connection is OK:ushmds"),
         (2158, "Sec-def data farm connection is OK:secdefnj"))
MAX_FRAME = 1 << 20  # a longer frame is not TWS's protocol: the connection is closed


class FakeTWS(OrderDesk, QuirkDesk, AccountDesk, DataDesk):
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
        self._conns: list[Conn] = []
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
        self._delays: dict[str, float] = {}
        self._drop_at: int | None = None  # drop every connection when this many more placeOrders arrive
        self._hide_untransmitted = False
        self._connectivity_at_start: int | None = None
        self._drop_after_start: float | None = None
        self._pacing_forced = 0
        self._data_error: tuple[int, str] | None = None
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
        log.info("fake TWS listening on %s:%d (server version %d)", self.host, self.port, self.server_version)
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
        conn = Conn(next(self._serials), writer)
        with self._lock:
            self._conns.append(conn)
        try:
            if await reader.readexactly(4) != b"API\0":
                log.warning("#%d: not the TWS API handshake; closed", conn.serial)
                return
            log.debug("<<< #%d %s", conn.serial, wire.Shown(wire.split(await self._frame(reader))))
            with self._lock:
                self._send(conn, [self.server_version, datetime.now(NY).strftime("%Y%m%d %H:%M:%S") + " EST"])
            while not conn.closed:
                fields = wire.split(await self._frame(reader))
                log.debug("<<< #%d %s", conn.serial, wire.Shown(fields))
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

    def _send(self, conn: Conn, fields: list) -> None:
        if conn.closed:
            return
        log.debug(">>> #%d %s", conn.serial, wire.Shown(fields))
        conn.writer.write(wire.frame(fields))

    def _error(self, conn: Conn, req_id: int, code: int, text: str) -> None:
        self._send(conn, [4, 2, req_id, code, text, ""])

    def _close(self, conn: Conn) -> None:
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

    def _live(self) -> list[Conn]:
        return [c for c in self._conns if c.client_id is not None and not c.closed]

    def _owners(self, o: FakeTwsOrder) -> list[Conn]:
        return [c for c in self._live() if c.client_id == o.client_id]

    _HANDLERS = {
        71: ("startApi", "_start_api"), 3: ("placeOrder", "_place_order"), 4: ("cancelOrder", "_cancel_order"),
        5: ("reqOpenOrders", "_req_open_orders"), 6: ("reqAccountUpdates", "_req_account_updates"),
        7: ("reqExecutions", "_req_executions"), 8: ("reqIds", "_req_ids"),
        9: ("reqContractDetails", "_req_contract_details"), 15: ("reqAutoOpenOrders", None),
        16: ("reqAllOpenOrders", "_req_all_open_orders"), 17: ("reqManagedAccts", "_req_managed_accts"),
        20: ("reqHistoricalData", "_req_historical_data"), 25: ("cancelHistoricalData", None),
        49: ("reqCurrentTime", "_req_current_time"), 58: ("reqGlobalCancel", "_req_global_cancel"),
        59: ("reqMarketDataType", "_req_market_data_type"), 1: ("reqMktData", "_req_mkt_data"),
        2: ("cancelMktData", None), 61: ("reqPositions", "_req_positions"),
        62: ("reqAccountSummary", "_req_account_summary"), 63: ("cancelAccountSummary", "_cancel_account_summary"),
        64: ("cancelPositions", "_cancel_positions"), 76: ("reqAccountUpdatesMulti", "_req_account_updates_multi"),
        77: ("cancelAccountUpdatesMulti", None), 81: ("reqMatchingSymbols", "_req_matching_symbols"),
        99: ("reqCompletedOrders", "_req_completed_orders"),
    }

    def _dispatch(self, conn: Conn, f: list[str]) -> None:
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
        if conn.backlog or name in self._delays:  # TWS answers a connection's requests in order: all wait
            if not conn.backlog:
                self._loop.call_later(self._delays[name], self._drain, conn)
            conn.backlog.append((msg, name, method, f))
            return
        self._handle(conn, msg, name, method, f)

    def _drain(self, conn: Conn) -> None:
        with self._lock:
            backlog, conn.backlog = conn.backlog, []
            for msg, name, method, f in backlog:
                if not conn.closed:
                    self._handle(conn, msg, name, method, f)

    def _handle(self, conn: Conn, msg: int, name: str, method: str, f: list[str]) -> None:
        try:
            getattr(self, method)(conn, f)
        except Exception as e:  # any failure is recorded in problems and answered like TWS (321)
            log.exception("#%d: %s could not be handled", conn.serial, name)
            self.problems.append(f"#{conn.serial} {name}: {e!r} in {f[:6]}")
            at = {3: 1, 20: 1, 81: 1, 1: 2, 4: 2, 7: 2, 9: 2, 62: 2, 76: 2}.get(msg)
            req_id = int(f[at]) if at is not None and len(f) > at and f[at].lstrip("-").isdigit() else -1
            self._error(conn, req_id, 321, f"Error validating request:-'{name}' : cause - {e}")

    def _unhandled(self, conn: Conn, f: list[str]) -> None:
        log.warning("#%d: no answer for message %s", conn.serial, f[0])
        self.unhandled.append(f)

    # -- connection ----------------------------------------------------------------------------------------
    def _start_api(self, conn: Conn, f: list[str]) -> None:
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
        if self._connectivity_at_start is not None:
            self._error(conn, -1, self._connectivity_at_start, TEXT[self._connectivity_at_start])
        if self._drop_after_start is not None:
            self._loop.call_later(self._drop_after_start, self._close_locked, conn)

    def _close_locked(self, conn: Conn) -> None:
        with self._lock:
            self._close(conn)

    def _req_ids(self, conn: Conn, f: list[str]) -> None:
        self._send(conn, [9, 1, conn.next_valid])

    def _req_managed_accts(self, conn: Conn, f: list[str]) -> None:
        self._send(conn, [15, 1, self.account])

    def _req_current_time(self, conn: Conn, f: list[str]) -> None:
        self._send(conn, [49, 1, int(time.time())])


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
    def open_summaries(self) -> int:
        """Account summary subscriptions the connected clients hold now (TWS allows two per client: 322)."""
        with self._lock:
            return sum(len(c.summaries) for c in self._live())

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
        with data maintained, 2110 TWS-server link broken, or a farm's "connection is OK": 2104, 2106, 2158)
        to every connected client."""
        texts = {**TEXT, **dict(FARMS)}
        if code not in (1100, 1101, 1102, 2110, *dict(FARMS)):
            raise ValueError("connectivity codes are 1100, 1101, 1102, 2110 and the farm OKs 2104, 2106, 2158")
        self._call(lambda: [self._error(c, -1, code, texts[code]) for c in self._live()])

    def delay_answers(self, request: str, seconds: float) -> None:
        """Answer every later ``request`` (its name as in ``count``, e.g. "reqOpenOrders") ``seconds`` late, as a
        gateway busy after a restart does; the connection's later requests wait behind it (TWS answers in order).
        0 ends the delay."""
        with self._lock:
            if seconds > 0:
                self._delays[request] = seconds
            else:
                self._delays.pop(request, None)

    def drop_after_start(self, seconds: float | None) -> None:
        """Close every later connection ``seconds`` after its startApi (a gateway that accepts, then drops:
        a competing login, its connection limit, a flapping network); None stops."""
        with self._lock:
            self._drop_after_start = seconds

    def connectivity_at_start(self, code: int | None) -> None:
        """Send ``code`` (1100: TWS is not connected to IBKR) right after every later startApi; None stops."""
        with self._lock:
            self._connectivity_at_start = code

    def rollback_next_valid_id(self, to: int) -> None:
        with self._lock:
            self._rollback = to

