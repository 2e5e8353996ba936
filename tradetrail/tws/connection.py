"""One long-lived API connection to TWS / IB Gateway per process, on an asyncio loop thread of its own.

Why a loop thread: the pipeline is synchronous and several threads of a process use the broker at once, while
ib_async is single-threaded asyncio. Every ib_async call runs on this loop (:meth:`TwsConnection.run`); the
caller waits for its result to a deadline.

- clientId: a process takes the first of ``TRADETRAIL_TWS_CLIENT_ID`` .. + ``TRADETRAIL_TWS_CLIENT_ID_SPAN``
  - 1 that no other connection holds (TWS answers 326 and closes for one in use); a reconnection asks for the
  same id again, so the orders this process placed stay its own to cancel. Every id held: ClientIdInUse,
  naming the settings, at once (ib_async alone would wait out its timeout).
- A refused connection, no handshake in time (the gateway restarting: IBC restarts it daily) or a drop: the
  connection is down and requests fail at once with NotConnected saying why and when the next attempt is,
  never as an empty answer. Attempts back off 1, 2, 4... s up to ``TRADETRAIL_TWS_RECONNECT_MAX_S`` (a
  connection that dropped within ``STABLE_S`` of being made does not reset the backoff); after a
  drop a background task keeps trying.
- After every (re)connect (``epoch`` counts them): ib_async's own synchronisation (positions, account
  updates), then ours under ``serial`` (every client's open orders, the completed orders, the executions) and
  the market data type. Only then is the connection ``connected``: ib_async's isConnected() is True from the
  handshake on, and a request during the synchronisation would share ib_async's answer key with it (the
  open orders, the completed orders, the positions are keyed by kind), ending with the wrong list. A request
  meanwhile waits for the connection (bounded) or fails saying it is connecting; reads keyed by kind hold
  ``serial`` (:meth:`TwsConnection.keyed`), so no two of them overlap. The broker reads orders, executions
  and positions afresh on each call, matched on orderRef and permId, so nothing of an earlier connection is
  trusted; listeners (:meth:`TwsConnection.on_reconnect`: the serving process reconciles every account) run
  after each reconnection.
- 1100 (TWS lost IBKR's servers) is tracked until 1101/1102, 2110 (TWS's link broken, restored by itself)
  until 1101/1102 or a data farm's "connection is OK" (2104/2106/2158); 1101 (restored, data lost) resubscribes the
  account updates (no account summary is held open: TWS allows two subscriptions, and ib_async's own 1102
  handler, which would open one, is unhooked); 2103-2108/2157/2158 keep each data farm's state; 354/10167/10168 are kept
  as market-data notes.
- A child forked from this process gets every connection fresh (:func:`_after_fork`): it connects on its own.
ib_async's loggers are kept at WARNING (at INFO they name the account in every order and execution); with
``TRADETRAIL_TWS_WIRE_LOG=true`` the wire is logged at DEBUG (logger ``ib_async.client``): a paper account's
capture confirms the fake TWS's layouts. Our own log lines show account ids masked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ib_async import IB
from ib_async.ib import StartupFetch
from ib_async.wrapper import RequestError

from tradetrail.tws.errors import ClientIdInUse, NotConnected, RequestFailed, RequestTimedOut, TwsError
from tradetrail.tws.pacing import HistoryPacer
from tradetrail.tws.shapes import masked

log = logging.getLogger(__name__)
T = TypeVar("T")

MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed_frozen": 4}
FARM_OK, FARM_BROKEN, FARM_INACTIVE = {2104, 2106, 2158}, {2103, 2105, 2157}, {2107, 2108}
CONNECTIVITY = {1100: "lost", 2110: "lost", 1101: "restored", 1102: "restored"}
# 2110 ("connectivity between TWS and server is broken; it will be restored automatically") may end with no
# 1101/1102, only the farms' "connection is OK": one of those (FARM_OK) ends a 2110. A 1100 waits for 1101/1102.
ENDED_BY_FARM_OK = {2110}
MARKET_DATA_NOTES = {354, 10089, 10090, 10167, 10168}
BACKOFF_START_S = 1.0
STABLE_S = 60.0  # a connection that lasted less than this was a flap: the backoff keeps growing
SETTLE_S = 3.0  # after a (re)connect, TWS's order lists are not trusted to prove an order absent for this long
STICKY_ATTEMPTS = 3  # a reconnection asks for its previous clientId this many times before taking another
TIMEOUTS_TO_DROP = 2  # requests in a row TWS left unanswered: the connection is taken as dead (half-open)
MARGIN_S = 5.0  # on top of a request's own deadline, for the hop to the loop thread and back
# What ib_async's connectAsync reads itself (positions it always reads): the account updates only. Orders and
# executions are read by _after_connect under ``serial``, as every later read of them is: ib_async keys the
# answers of reqOpenOrders and reqAllOpenOrders alike ("openOrders"), so two such reads at once resolve each
# other with the wrong list.
STARTUP_FETCH = StartupFetch.ACCOUNT_UPDATES


def quiet_ib_async(wire: bool) -> None:
    """ib_async logs every order and execution (with the account number) at INFO, and again on each read:
    its loggers are kept at WARNING, unless a wire capture is asked for (``TRADETRAIL_TWS_WIRE_LOG=true``:
    ``ib_async.client`` at DEBUG, ``>>>`` sent and ``<<<`` received; the capture names the account)."""
    logging.getLogger("ib_async").setLevel(logging.DEBUG if wire else logging.WARNING)
    logging.getLogger("ib_async.client").setLevel(logging.DEBUG if wire else logging.NOTSET)  # NOTSET: inherits


def _now() -> str:
    return datetime.now(UTC).isoformat()


class TwsConnection:
    """The process's connection (one per App, as the Web API's session is)."""

    def __init__(self, settings):
        self.host, self.port = settings.tws_host, int(settings.tws_port)
        first = settings.tws_client_id
        self.client_ids = list(range(first, first + settings.tws_client_id_span))
        self.account = settings.tws_account or ""
        self.connect_timeout = settings.tws_connect_timeout_s
        self.timeout = settings.tws_timeout_s
        self.timezone = settings.tws_timezone  # how ib_async reads a time TWS sends without a zone
        self.reconnect_max = settings.tws_reconnect_max_s
        self.market_data_type_name = settings.tws_market_data_type
        self.market_data_type = MARKET_DATA_TYPES[settings.tws_market_data_type]
        quiet_ib_async(settings.tws_wire_log)
        self._pacing = (settings.tws_pacing_scale, settings.processes_sharing_gateway)
        self.settle_s, self.stable_s = SETTLE_S, STABLE_S
        self._fresh()
        self._listeners: list[Callable[[int], None]] = []
        _CONNECTIONS.add(self)

    def _fresh(self) -> None:
        """Not started: no loop, no connection (at construction, and in a forked child: :func:`_after_fork`)."""
        self.pacer = HistoryPacer(self._pacing[0], share=self._pacing[1])
        self.ib: IB | None = None
        self.client_id: int | None = None
        self.epoch = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._connect_gate = threading.Lock()  # one synchronous connection attempt at a time
        self._state_lock = threading.Lock()
        self._alock: asyncio.Lock | None = None  # on the loop: one connection attempt at a time
        self.serial: asyncio.Lock | None = None  # on the loop: requests whose answers share one key in ib_async
        self._up = False
        self._up_since = 0.0  # monotonic
        self._closing = False
        self._failures = 0  # failed attempts since the last successful one (the clientId stays sticky for 3)
        self._flaps = 0  # connections in a row that dropped within ``stable_s``
        self._next_attempt = 0.0
        self._pending_epoch: int | None = None  # a reconnection the listeners have not been told of yet
        self._notifier: threading.Thread | None = None
        self._reconnect: asyncio.Task | None = None
        self._timeouts = 0  # requests in a row that timed out (reset by any answered one)
        self.state: dict[str, Any] = {
            "connected": False, "connected_at": None, "accounts": [], "drops": 0, "dropped_at": None,
            "last_error": None, "ib_connectivity": "unknown", "lost_by": None, "farms": {}, "market_data_notes": [],
            "resubscribed": 0, "synced": None, "messages": deque(maxlen=20)}

    # -- the loop thread ----------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._closing:
                raise NotConnected("this process's TWS connection is closed")
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def spin() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            thread = threading.Thread(target=spin, name="tws-loop", daemon=True)
            thread.start()
            started.wait(10)
            self._loop, self._thread = loop, thread
            self.ib = self._submit(self._make_ib(), 10)

    async def _make_ib(self) -> IB:
        ib = IB()
        ib.RaiseRequestErrors = True  # a failed request raises (error 162 is not "0 bars")
        ib.TimezoneTWS = self.timezone  # else a zoneless execution time is read as this host's local time
        ib.errorEvent -= ib._onError  # its 1102 handler opens an account summary nobody cancels (TWS allows 2)
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        self._alock, self.serial = asyncio.Lock(), asyncio.Lock()
        return ib

    def _submit(self, coro: Awaitable[T], timeout: float) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("TwsConnection.run called on its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except concurrent.futures.CancelledError:  # close() ends every task on the loop, perhaps mid-way:
            # "dropped during" tells a placement that a leg may have gone out (ambiguous, never "not sent")
            raise NotConnected("the connection to TWS dropped during the request: this process's TWS connection "
                               "was closed") from None

    # -- connecting ---------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Up, and synchronised: ib_async's isConnected() is True as soon as the handshake ends, before its
        own and our synchronisation; requests wait for ``_up`` (set once both are done)."""
        return self.ib is not None and self._up and self.ib.isConnected()

    def settling(self) -> float:
        """Seconds left of the settle time after the last (re)connect (0 once past it)."""
        return max(0.0, self._up_since + self.settle_s - time.monotonic()) if self._up else 0.0

    def ensure_connected(self) -> None:
        """Connect now unless connected; NotConnected (why, and when the next attempt is) if it cannot."""
        self._start()
        if self.connected:
            return
        budget = self.attempt_s() + MARGIN_S
        if not self._connect_gate.acquire(timeout=budget):
            raise NotConnected(f"still connecting to TWS at {self.host}:{self.port} (synchronising) after "
                               f"{budget:.0f} s; not asked")
        try:
            if self.connected:
                return
            wait = self._next_attempt - time.monotonic()
            if wait > 0:
                raise NotConnected(f"{self.state['last_error'] or 'not connected to TWS'}; next attempt in "
                                   f"{wait:.0f} s")
            try:
                self._submit(self._connect(reconnect=self.client_id is not None), budget)
            except TimeoutError:
                raise NotConnected(f"no connection to TWS at {self.host}:{self.port} within {budget:.0f} s") from None
            if not self.connected:
                raise NotConnected(f"{self.state['last_error'] or 'not connected to TWS'}")
        finally:
            self._connect_gate.release()

    def attempt_s(self) -> float:
        """The one deadline of a connection attempt: the handshake and ib_async's own synchronisation (up to
        ``connect_timeout`` each), then our three reads (up to ``timeout`` each)."""
        return 2 * self.connect_timeout + 3 * self.timeout

    async def _connect(self, *, reconnect: bool) -> None:
        """One attempt, under one deadline (:meth:`attempt_s`) that the caller's wait covers. Cut off (the
        deadline, or the caller gave up): the failure is recorded (backoff, ``last_error``) and the half-made
        connection closed, never left handshaken and unsynchronised."""
        try:
            async with asyncio.timeout(self.attempt_s()):
                await self._connect_locked(reconnect=reconnect)
        except TimeoutError:
            self._cut_off(f"no synchronised connection to TWS at {self.host}:{self.port} within "
                          f"{self.attempt_s():g} s (the handshake, then the account, positions, orders and "
                          "executions): the gateway is slow or not answering")
            raise NotConnected(self.state["last_error"]) from None
        except asyncio.CancelledError:
            self._cut_off(f"the connection attempt to TWS at {self.host}:{self.port} was cut off before it "
                          "synchronised")
            raise

    def _cut_off(self, why: str) -> None:
        if not self.connected and self.ib is not None:
            self.ib.disconnect()
            self._failed(NotConnected(why))

    async def _connect_locked(self, *, reconnect: bool) -> None:
        async with self._alock:
            if self.connected:
                return
            wait = self._next_attempt - time.monotonic()
            if wait > 0:  # another caller's attempt just failed: not again before the backoff
                raise NotConnected(f"{self.state['last_error'] or 'not connected to TWS'}; next attempt in "
                                   f"{wait:.0f} s")
            ids = self.client_ids
            if reconnect and self.client_id is not None and self._failures < STICKY_ATTEMPTS:
                ids = [self.client_id]
            for client_id in ids:
                try:
                    async with self.serial:  # nothing keyed (open orders, positions...) overlaps the sync
                        await self._connect_once(client_id)
                        synced = await self._synchronise()
                except ClientIdInUse as exc:
                    if len(ids) == 1 and reconnect:
                        self._failed(ClientIdInUse(f"{exc} (our previous connection, not yet released by the "
                                                   "gateway; asking again)"))
                        raise
                    continue
                except NotConnected as exc:
                    self._failed(exc)
                    raise
                self._failures, self._next_attempt = 0, 0.0
                self._after_connect(client_id, synced)
                return
            exc = ClientIdInUse(f"every TWS clientId this deployment may use ({ids[0]}..{ids[-1]}: "
                                f"TRADETRAIL_TWS_CLIENT_ID and TRADETRAIL_TWS_CLIENT_ID_SPAN) is held by another "
                                f"connection to {self.host}:{self.port} (error 326): other tradetrail processes, "
                                "TWS itself or another API client")
            self._failed(exc)
            raise exc

    async def _connect_once(self, client_id: int) -> None:
        ib, loop = self.ib, asyncio.get_running_loop()
        refused: asyncio.Future = loop.create_future()

        def on_error(_req_id, code, text, _contract) -> None:
            if code == 326 and not refused.done():
                refused.set_result(f"326 {text}")

        def on_api_error(text: str) -> None:
            if not refused.done():
                refused.set_result(text)

        ib.errorEvent += on_error
        ib.client.apiError += on_api_error
        with self._state_lock:  # what TWS says of IBKR's servers from here on (1100 while connecting stays)
            self.state.update(ib_connectivity="unknown", lost_by=None)
        task = asyncio.ensure_future(ib.connectAsync(self.host, self.port, client_id, timeout=self.connect_timeout,
                                                     account=self.account, fetchFields=STARTUP_FETCH))
        try:
            done, _ = await asyncio.wait({task, refused}, timeout=self.connect_timeout * 2,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
                return
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            ib.disconnect()
            if refused in done:
                text = str(refused.result())
                if text.startswith("326") or "already in use" in text:
                    raise ClientIdInUse(f"TWS clientId {client_id} is in use by another connection (error {text})")
                if "ConnectionRefused" in text:
                    raise NotConnected(self._why_not(ConnectionRefusedError()))
                raise NotConnected(f"TWS at {self.host}:{self.port} closed the connection during the handshake: "
                                   f"{text}")
            raise TimeoutError
        except OSError as exc:
            raise NotConnected(self._why_not(exc)) from None
        finally:
            if not task.done():  # this attempt was cut off (close(), the deadline): its connectAsync ends with it
                task.cancel()
            ib.errorEvent -= on_error
            ib.client.apiError -= on_api_error

    def _why_not(self, exc: OSError) -> str:
        where = f"TWS / IB Gateway at {self.host}:{self.port}"
        if isinstance(exc, TimeoutError):
            return (f"no API handshake from {where} within {self.connect_timeout:g} s: it is starting, restarting "
                    "(IBC restarts it daily) or not logged in")
        if isinstance(exc, ConnectionRefusedError):
            return (f"{where} refused the connection: is it running, with the API enabled on this port? IBC "
                    "restarts it daily; a run during the restart fails here")
        if isinstance(exc, ConnectionError):
            return f"{where} dropped the connection while we connected ({exc or type(exc).__name__})"
        return f"{where} cannot be reached: {exc.strerror or exc}"

    def _failed(self, exc: TwsError) -> None:
        self._failures += 1
        backoff = min(self.reconnect_max, BACKOFF_START_S * 2 ** (self._failures + self._flaps - 1))
        self._next_attempt = time.monotonic() + backoff
        with self._state_lock:
            self.state["last_error"] = str(exc)
        log.warning("TWS: %s (next attempt in %.0f s)", exc, backoff)

    async def _synchronise(self) -> dict[str, Any]:
        """After the handshake (``serial`` held): every client's open orders, the completed orders and the
        executions, which ib_async's own sync leaves to us (STARTUP_FETCH). A drop meanwhile fails the attempt."""
        ib = self.ib
        synced: dict[str, Any] = {"positions": len(ib.positions())}
        reads = {"open_orders_all_clients": ib.reqAllOpenOrdersAsync, "completed_orders":
                 lambda: ib.reqCompletedOrdersAsync(False), "executions": ib.reqExecutionsAsync}
        for name, read in reads.items():
            try:
                synced[name] = len(await asyncio.wait_for(read(), self.timeout))
            except ConnectionError as exc:
                ib.disconnect()
                raise NotConnected(self._why_not(exc)) from None
            except (TimeoutError, RequestError) as exc:
                synced[name] = f"not read: {type(exc).__name__}"
        if not ib.isConnected():
            raise NotConnected(self._why_not(ConnectionError("while synchronising")))
        synced["orders"] = len(ib.trades())
        return synced

    def _after_connect(self, client_id: int, synced: dict[str, Any]) -> None:
        ib = self.ib
        self.client_id = client_id
        self.epoch += 1
        if self.market_data_type != 1:
            ib.reqMarketDataType(self.market_data_type)
        with self._state_lock:
            self.state.update(connected=True, connected_at=_now(), accounts=list(ib.managedAccounts()),
                              last_error=None, synced={"epoch": self.epoch, "at": _now(), **synced},
                              client_id=client_id)
            if self.state["ib_connectivity"] != "lost":  # a 1100 during the connect is not overwritten
                self.state["ib_connectivity"] = "ok"
        self._up, self._up_since = True, time.monotonic()
        log.info("TWS: connected to %s:%d as clientId %d (epoch %d, accounts %s)", self.host, self.port, client_id,
                 self.epoch, ",".join(masked(a) for a in ib.managedAccounts()))
        if self.epoch > 1:  # a reconnection: the listeners run on a thread of their own (they may call run())
            self._notify(self.epoch)

    def _notify(self, epoch: int) -> None:
        """Tell the listeners of reconnection ``epoch`` on one worker thread: reconnections while they run
        are coalesced into one more round (with the latest epoch), never a thread each."""
        with self._state_lock:
            self._pending_epoch = epoch
            if self._notifier is not None and self._notifier.is_alive():
                return
            self._notifier = threading.Thread(target=self._tell_listeners, name="tws-reconnected", daemon=True)
            self._notifier.start()

    def _tell_listeners(self) -> None:
        while True:
            with self._state_lock:
                epoch, self._pending_epoch = self._pending_epoch, None
                if epoch is None or self._closing:
                    self._notifier = None
                    return
            for listener in list(self._listeners):
                try:
                    listener(epoch)
                except Exception:
                    log.exception("TWS: a reconnection listener failed")

    def on_reconnect(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call ``listener(epoch)`` after every reconnection (not the first connect); returns its remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _on_disconnected(self) -> None:
        """A drop (ib_async emits this twice per disconnect; the second finds us down already)."""
        if not self._up:
            return
        self._up = False
        lived = time.monotonic() - self._up_since
        self._flaps = 0 if lived >= self.stable_s else self._flaps + 1
        # the first drop may be tried again at once (a request then says why it cannot connect); flaps in a row
        # wait 2, 4, 8... s
        backoff = min(self.reconnect_max, BACKOFF_START_S * 2 ** (self._flaps - 1)) if self._flaps > 1 else 0.0
        self._next_attempt = time.monotonic() + backoff
        with self._state_lock:
            self.state.update(connected=False, dropped_at=_now(), drops=self.state["drops"] + 1,
                              last_error=f"the connection to TWS dropped after {lived:.0f} s"
                                         + (f" ({self._flaps} in a row within {self.stable_s:g} s of connecting)"
                                            if self._flaps else ""))
        log.warning("TWS: the connection to %s:%d dropped after %.0f s (next attempt in %.0f s)", self.host,
                    self.port, lived, max(backoff, BACKOFF_START_S))
        if not self._closing and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        first = True
        while not self._closing and not self.connected:
            wait = self._next_attempt - time.monotonic()
            await asyncio.sleep(max(wait, BACKOFF_START_S if first else 0.05))
            first = False
            if self._closing or self.connected:
                return
            with contextlib.suppress(TwsError):  # _failed set the next attempt's time
                await self._connect(reconnect=True)

    # -- what TWS tells us --------------------------------------------------------------------------------
    def _on_error(self, req_id: int, code: int, text: str, _contract) -> None:
        with self._state_lock:
            self.state["messages"].append({"at": _now(), "code": code, "req_id": req_id, "text": text[:300]})
            if code in CONNECTIVITY:
                lost = CONNECTIVITY[code] == "lost"
                if not (lost and self.state["ib_connectivity"] == "lost" and self.state["lost_by"] == 1100):
                    self.state["lost_by"] = code if lost else None  # a 2110 after a 1100 still needs 1101/1102
                self.state["ib_connectivity"] = CONNECTIVITY[code]
                self.state[f"last_{code}"] = _now()
            elif code in FARM_OK | FARM_BROKEN | FARM_INACTIVE:
                farm = text.rsplit(":", 1)[-1].strip() or str(code)
                self.state["farms"][farm] = "ok" if code in FARM_OK else "broken" if code in FARM_BROKEN \
                    else "inactive"
                if (code in FARM_OK and self.state["ib_connectivity"] == "lost"
                        and self.state["lost_by"] in ENDED_BY_FARM_OK):
                    self.state.update(ib_connectivity="restored", lost_by=None, restored_by=code)
            elif code in MARKET_DATA_NOTES:
                self.state["market_data_notes"] = (self.state["market_data_notes"] + [f"{code}: {text[:200]}"])[-10:]
        if code == 1101 and not self._closing:
            asyncio.ensure_future(self._resubscribe())

    async def _resubscribe(self) -> None:
        """1101: TWS is back with IBKR's servers but our subscriptions are gone: ask for them again."""
        ib = self.ib
        try:
            if self.market_data_type != 1:
                ib.reqMarketDataType(self.market_data_type)
            managed = ib.managedAccounts()
            account = self.account or (managed[0] if len(managed) == 1 else "")  # what connecting subscribed
            if account:
                await asyncio.wait_for(ib.reqAccountUpdatesAsync(account), self.timeout)
            # no account summary: none is held open (the broker asks for one per read and cancels it)
        except (TimeoutError, ConnectionError, RequestError) as exc:
            log.warning("TWS: resubscribing after 1101 failed: %s", exc)
            return
        with self._state_lock:
            self.state["resubscribed"] += 1
            self.state["last_resubscribed"] = _now()
        log.info("TWS: resubscribed after 1101 (connectivity restored, data lost)")

    # -- requests -----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def keyed(self):
        """Hold ``serial`` for a read whose answer ib_async keys by kind, not by request id (open orders,
        completed orders, positions): never two at once, never during a (re)connect's synchronisation."""
        async with self.serial:
            if not self.connected:
                raise NotConnected(f"not connected to TWS ({self.state['last_error'] or 'connecting'})")
            yield

    def run(self, make: Callable[[IB], Awaitable[T]], *, timeout: float | None = None, what: str = "request") -> T:
        """``make(ib)`` on the loop, connected first; its errors as TwsError (a drop mid-way: NotConnected)."""
        self.ensure_connected()
        limit = timeout if timeout is not None else self.timeout

        async def guarded() -> T:
            if not self.connected:
                raise NotConnected(f"not connected to TWS ({self.state['last_error'] or 'connecting'})")
            return await asyncio.wait_for(make(self.ib), limit)

        try:
            out = self._submit(guarded(), limit + MARGIN_S)
        except TimeoutError:
            self._timed_out(what)
            raise RequestTimedOut(f"TWS did not answer {what} within {limit:g} s") from None
        except RequestError as exc:
            raise RequestFailed(exc.code, exc.message) from None
        except ConnectionError as exc:
            raise NotConnected(f"the connection to TWS dropped during {what} ({exc})") from None
        self._timeouts = 0
        return out

    def _timed_out(self, what: str) -> None:
        """A half-open connection (a dead path, a hung gateway: no FIN, no RST) answers nothing and never drops:
        after ``TIMEOUTS_TO_DROP`` requests in a row unanswered it is closed, so the reconnect loop takes over.
        (This also ends the late answers of a timed-out read keyed by kind: the next one is on a new connection.)"""
        with self._state_lock:
            self._timeouts += 1
            n, epoch = self._timeouts, self.epoch
        if n < TIMEOUTS_TO_DROP or self._loop is None:
            return

        def drop() -> None:
            if self.epoch != epoch or not self._up:
                return
            self._timeouts = 0
            log.warning("TWS: %d requests in a row unanswered (the last: %s): closing the connection to reconnect",
                        n, what)
            self.ib.disconnect()
            with self._state_lock:
                self.state["last_error"] = (f"TWS answered none of {n} requests in a row (the last: {what}): the "
                                            "connection was closed as dead, reconnecting")

        self._loop.call_soon_threadsafe(drop)

    def status(self) -> dict[str, Any]:
        """What we know of the connection now (a copy; any thread)."""
        with self._state_lock:
            out = {k: (list(v) if isinstance(v, deque) else dict(v) if isinstance(v, dict) else v)
                   for k, v in self.state.items()}
        out["connected"] = self.connected
        out["timing_out"] = self._timeouts
        return out

    def describe(self) -> dict[str, Any]:
        """For status pages and /health (never a secret)."""
        st = self.status()
        return {"api": "tws", "host": self.host, "port": self.port, "client_id": self.client_id,
                "client_ids": f"{self.client_ids[0]}..{self.client_ids[-1]}", "epoch": self.epoch,
                "market_data_type": self.market_data_type_name, **st, "messages": st["messages"][-5:],
                "pacing": self.pacer.report()}

    def close(self) -> None:
        """Disconnect and stop the loop thread (tests, and a process shutting down)."""
        self._closing = True
        if self._thread is None:
            return

        async def shut() -> None:
            # every task on the loop (the reconnect loop, a connection attempt and its connectAsync, a
            # resubscription, a request) ends here, on the loop, before it stops: else the loop is stopped
            # under them ("Task was destroyed but it is pending", a read on a closed socket)
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            self._up = False
            self.ib.disconnect()

        with contextlib.suppress(Exception, concurrent.futures.CancelledError):
            self._submit(shut(), 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._thread = None


# Every TwsConnection of this process: a child forked from it must not use the parent's (its loop thread does
# not exist in the child, and the socket, the loop's epoll instance are the parent's).
_CONNECTIONS: weakref.WeakSet[TwsConnection] = weakref.WeakSet()
# What a forked child inherited of its parent's connections, kept unreferenced by them and never closed or
# garbage-collected: closing (or collecting) the transport would unregister the socket from the epoll instance
# the child shares with the parent, and the parent's connection would stop hearing TWS.
_INHERITED: list[tuple[Any, ...]] = []


def _after_fork() -> None:
    """In a forked child: every connection is fresh (not started); its next request connects on a loop of its
    own, as a clientId of its own (TWS refuses the parent's with 326: the next free one is taken)."""
    for conn in list(_CONNECTIONS):
        _INHERITED.append((conn.ib, conn._loop, conn._thread, conn._reconnect, conn._notifier))
        closing = conn._closing
        conn._start_lock, conn._connect_gate = threading.Lock(), threading.Lock()
        conn._fresh()
        conn._closing = closing


os.register_at_fork(after_in_child=_after_fork)
