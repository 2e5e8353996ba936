"""The IBKR broker through TWS / IB Gateway (``TRADETRAIL_BROKER=ibkr_tws``), behind the broker port.

- Identity: every leg's ``orderRef`` is its deterministic client order id; TWS echoes it in openOrder,
  completedOrder and execDetails. The broker order id we report is TWS's ``permId`` (stable across
  connections and restarts). Orders and fills are matched on orderRef and permId, never on orderId, which is
  only unique per clientId and connection and can roll back after a gateway restart.
- Placing: first a fresh look for an order with any of the legs' orderRefs (all clients' open orders, the
  completed orders, the executions): one found means an earlier attempt reached TWS and nothing is sent
  (``already registered``: the order manager leaves the legs UNKNOWN for reconciliation). Then parent + stop +
  target with ``parentId``, ``transmit`` on the last leg only, and a wait for TWS to acknowledge every leg
  (a permId). Error 201 and the like: rejected, with TWS's text. No acknowledgement in time, or the
  connection dropping once the first leg went out: ambiguous, never sent again here. Order ids are taken
  above every id this process has seen or used, so a nextValidId rolled back by a gateway restart cannot
  turn a new order into a modification of an old one.
- Reading: every call reads afresh (reqAllOpenOrders, reqCompletedOrders, reqExecutions, reqPositions, the
  account summary), so what an earlier connection saw is never trusted. :meth:`order` answers None only when
  two reads on one settled live connection show no such order, TWS is connected to IBKR (no 1100) and the
  order is not a leg sent and never answered by TWS (marks in the database, ``tws_placements``, read by every
  process: TWS may not list untransmitted legs to a later session or another client; a mark expires when two
  looks on a settled connection at least ``mark_expiry_s`` after the placement list it nowhere); otherwise
  OrderStatusUnknown. TWS keeps completed orders and
  executions for the current day (executions for as many days as its trade log is set to): an order older
  than that is not found (docs/tws.md).
- Cancelling: ``cancelOrder`` from the client that placed the order (TWS lets no other cancel it), waiting to
  a deadline for TWS's confirmation or refusal; the caller polls for the CANCELLED state. An order that
  filled first was not cancelled: False.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime

from ib_async import IB, ExecutionFilter, Fill, Trade
from ib_async import Contract as IbContract
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tradetrail.broker.port import (
    AccountValues,
    BrokerError,
    BrokerFill,
    BrokerHealth,
    BrokerOrder,
    BrokerPosition,
    OrderStatusUnknown,
    PlaceResult,
)
from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import OrderSpec
from tradetrail.tws import shapes
from tradetrail.tws.connection import TwsConnection
from tradetrail.tws.errors import NotConnected, RequestFailed, RequestTimedOut, TwsError, UnmappedOrder
from tradetrail.tws.placements import NotClaimed, PlacementMarks

log = logging.getLogger(__name__)
SUMMARY_TAGS = "AccountType,NetLiquidation,TotalCashValue"
ACKNOWLEDGED_POLL_S = 0.01
COMMISSION_WAIT_S = 2.0  # once per execution (docs/tws.md: a commission arriving later is charged by the next sync)
COMMISSION_WAITED_KEPT = 100_000
CONFIRM_GAP_S = 0.2  # "absent" is read twice, this far apart at least (and past the connection's settle time)
MARK_EXPIRY_S = 30.0
SKIPPED_KEPT = 100  # notes of other programs' skipped orders kept (the latest listed); one dropped is noted again
PROBE_S = 5.0  # health's reqCurrentTime answer, at most this long
REJECTING = {"Cancelled", "ApiCancelled", "Inactive"}


class _NotSent(Exception):
    """Nothing of the order reached TWS (the connection was down before the first leg)."""


class TwsBroker:
    name = "ibkr_tws"
    simulated = False

    def __init__(self, conn: TwsConnection, engine: Engine, *, account: str | None = None):
        self.conn, self._configured = conn, account
        self._lock = threading.Lock()
        # every leg sent and not answered by TWS yet, in the database: every process sees it (TWS may not list
        # untransmitted legs to a later session, nor to another client)
        self.marks = PlacementMarks(engine)
        self._highest_order_id = 0
        # how long after its placement a never-answered leg TWS lists nowhere stops being waited for
        self.mark_expiry_s = max(MARK_EXPIRY_S, 2 * conn.timeout)
        self._contracts: dict[int, IbContract] = {}
        self._commission_waited: dict[str, None] = {}  # execIds whose commission report was waited for (ordered)
        self._skipped: dict[int, str] = {}  # permId -> why: other programs' orders we cannot map (noted once)
        self.skipped_kept = SKIPPED_KEPT
        self.last_values: dict = {}

    # -- session and account ------------------------------------------------------------------------------
    def health(self) -> BrokerHealth:
        try:
            self.conn.ensure_connected()
        except TwsError as exc:
            return BrokerHealth(broker=self.name, authenticated=False, connected=False, competing=False,
                                paper=shapes.paper(self._configured or ""), message=str(exc))
        problems: list[str] = []
        try:  # a half-open connection still looks connected: only an answer proves it alive
            self.conn.run(lambda ib: ib.reqCurrentTimeAsync(), timeout=min(self.conn.timeout, PROBE_S),
                          what="the current time (a liveness probe)")
        except TwsError as exc:
            problems.append(str(exc))
        st = self.conn.status()
        accounts = list(st["accounts"])
        authenticated = bool(accounts)
        if not accounts:
            problems.append("TWS lists no managed account: is it logged in?")
        elif self._configured and self._configured not in accounts:
            authenticated = False
            problems.append(f"TRADETRAIL_TWS_ACCOUNT={shapes.masked(self._configured)} is not among the accounts "
                            f"this login manages ({', '.join(map(shapes.masked, accounts))})")
        lost = st["ib_connectivity"] == "lost"
        if lost:
            code = st.get("lost_by") or 1100
            problems.append(f"TWS has lost its connection to IBKR's servers ({code}): orders cannot reach the market "
                            "until it restores it (" + ("1101/1102" if code == 1100 else "1101/1102 or a data farm OK")
                            + ")")
        broken = sorted(farm for farm, state in st["farms"].items() if state == "broken")
        if broken:
            problems.append(f"data farm connection broken: {', '.join(broken)}")
        traded = self._configured or (accounts[0] if accounts else "")
        alive = st["connected"] and not lost and not st["timing_out"]
        return BrokerHealth(broker=self.name, authenticated=authenticated, connected=alive,
                            competing=False, paper=shapes.paper(traded), message="; ".join(problems))

    def account(self, user_id: int, strategy_id: int | None = None) -> str:
        if strategy_id is not None:
            raise BrokerError("a replay-clock strategy trades on a simulated account of its own; IBKR cannot trade a "
                              "replayed market (leave the strategy's broker empty or set it to simulated)")
        self.conn.ensure_connected()
        accounts = list(self.conn.status()["accounts"])
        if self._configured:
            if self._configured not in accounts:
                managed = ", ".join(map(shapes.masked, accounts)) or "none"
                raise BrokerError(f"TRADETRAIL_TWS_ACCOUNT={shapes.masked(self._configured)} is not among the "
                                  f"accounts this TWS login manages ({managed})")
            return self._configured
        if not accounts:
            raise BrokerError("this TWS login manages no account to trade")
        return accounts[0]

    def account_values(self, account: str) -> AccountValues:
        async def read(ib: IB) -> list:
            async with self.conn.keyed():  # TWS allows two account summary subscriptions: ours is the only one
                req_id = ib.client.getReqId()
                done = ib.wrapper.startReq(req_id)
                ib.client.reqAccountSummary(req_id, "All", SUMMARY_TAGS)
                try:
                    await done
                finally:
                    if ib.isConnected():
                        ib.client.cancelAccountSummary(req_id)
            return [v for v in ib.wrapper.acctSummary.values() if v.account == account]

        values = shapes.account_values(self.conn.run(read, what="the account summary"), account)
        self.last_values = {"account": account, "cash": values.cash, "equity": values.equity,
                            "currency": values.currency, "at": datetime.now(UTC).isoformat()}
        return values

    def account_state(self, account: str) -> tuple[AccountValues, list[BrokerPosition]]:
        return self.account_values(account), self.positions(account)

    def positions(self, account: str) -> list[BrokerPosition]:
        async def read(ib: IB):
            async with self.conn.keyed():
                rows = await ib.reqPositionsAsync()
            prices = {item.contract.conId: shapes.num(item.marketPrice) for item in ib.portfolio(account)}
            return [(p.contract, p.position, p.avgCost, prices.get(p.contract.conId)) for p in rows
                    if p.account == account and p.position]

        return [shapes.broker_position(*row) for row in self.conn.run(read, what="positions")]

    # -- placing ------------------------------------------------------------------------------------------
    def place(self, account: str, contract: Contract, orders: list[OrderSpec]) -> PlaceResult:
        if not contract.conid:
            return PlaceResult("rejected", reason=f"{contract.symbol} has no IBKR contract id: resolve it through "
                                                  "IBKR market data ('ibkr_tws' or 'ibkr')")
        refs = [o.client_order_id for o in orders]
        try:
            waiting = sorted(self.marks.waiting(refs))
        except SQLAlchemyError as exc:
            return PlaceResult("rejected", reason=f"not sent: the database cannot be read for earlier attempts "
                                                  f"({type(exc).__name__})")
        if waiting:
            return PlaceResult("ambiguous", reason=f"an earlier attempt of {', '.join(waiting)} was sent to TWS and "
                                                   "never answered; not sent again (reconciliation settles it)")
        try:
            found = self.conn.run(lambda ib: self._registered(ib, account, refs),
                                  what="the look for an earlier attempt of this order")
        except TwsError as exc:
            return PlaceResult("rejected", reason=f"not sent: TWS could not be asked whether an earlier attempt "
                                                  f"reached it ({exc})")
        if found:
            return PlaceResult("ambiguous", reason=f"already registered at TWS: orderRef {', '.join(sorted(found))} "
                                                   "(an earlier attempt reached it); not sent again")
        try:
            target = self._qualified(int(contract.conid))
        except TwsError as exc:
            return PlaceResult("rejected", reason=f"not sent: {exc}")
        epoch = self.conn.epoch
        try:
            self.marks.claim(refs)  # committed before any leg goes out
        except NotClaimed as exc:
            return PlaceResult("ambiguous", reason=f"{exc}; not sent again (reconciliation settles it)")
        except SQLAlchemyError as exc:
            return PlaceResult("rejected", reason=f"not sent: the placement could not be recorded in the database "
                                                  f"first ({type(exc).__name__})")
        try:
            status, detail = self.conn.run(lambda ib: self._send(ib, account, target, orders),
                                           what="the order placement")
        except _NotSent as exc:
            self._released(refs)
            return PlaceResult("rejected", reason=f"not sent: {exc}")
        except NotConnected as exc:
            if self.conn.epoch == epoch and not self.conn.connected and "dropped during" not in str(exc):
                self._released(refs)  # the connection was down before anything went out
                return PlaceResult("rejected", reason=f"not sent: {exc}")
            return PlaceResult("ambiguous", reason=f"the connection dropped while placing: {exc}")
        except RequestTimedOut as exc:
            return PlaceResult("ambiguous", reason=f"{exc}: the order may exist at TWS; reconciliation settles it")
        except TwsError as exc:
            return PlaceResult("ambiguous", reason=str(exc))
        if status == "accepted":
            self._answered(refs, detail)
            return PlaceResult("accepted", broker_order_ids=detail)
        if status == "rejected":
            self._answered(refs)
            return PlaceResult("rejected", reason=detail)
        return PlaceResult("ambiguous", reason=detail)

    def _qualified(self, conid: int) -> IbContract:
        """The contract as TWS qualifies it (symbol, type, currency; routed SMART), once per conid."""
        with self._lock:
            known = self._contracts.get(conid)
        if known is not None:
            return known

        async def qualify(ib: IB) -> IbContract | None:
            contract = IbContract(conId=conid, exchange="SMART")
            [done] = await ib.qualifyContractsAsync(contract)
            return done

        try:
            contract = self.conn.run(qualify, what=f"qualifying contract {conid}")
        except RequestFailed as exc:
            raise TwsError(f"TWS cannot qualify contract {conid}: {exc}") from None
        if contract is None:
            raise TwsError(f"TWS cannot qualify contract {conid} to one instrument")
        with self._lock:
            self._contracts[conid] = contract
        return contract

    def _answered(self, refs, perm_ids: dict[str, str] | None = None) -> None:
        """TWS answered these legs. A failed write leaves the marks waiting: the safe side (UNKNOWN until a
        later look lists them and answers the marks)."""
        try:
            self.marks.answered(refs, perm_ids)
        except SQLAlchemyError:
            log.exception("TWS: the answer to %s could not be recorded (the marks stay waiting)", ", ".join(refs))

    def _released(self, refs) -> None:
        try:
            self.marks.release(refs)
        except SQLAlchemyError:
            log.exception("TWS: the claim of %s, never sent, could not be dropped (it stays ambiguous)",
                          ", ".join(refs))

    async def _lists(self, ib: IB, account: str) -> tuple[list[Trade], list[Trade], list[Fill], dict]:
        """All clients' open orders, the completed orders and the executions of ``account``, read now."""
        async with self.conn.keyed():
            open_ = await ib.reqAllOpenOrdersAsync()
            done = await ib.reqCompletedOrdersAsync(False)
        listed = await ib.reqExecutionsAsync(ExecutionFilter(acctCode=account))
        fills = list({f.execution.execId: f for f in listed if f.execution.acctNumber in ("", account)}.values())
        known = ib.wrapper.fills  # a commission report lands on the first Fill seen for its execution

        def uncharged() -> list[str]:
            return [f.execution.execId for f in fills if not known.get(f.execution.execId, f).commissionReport.execId]

        with self._lock:  # its commission report is waited for once per execution, never on every read
            waiting = [e for e in uncharged() if e not in self._commission_waited]
        if waiting:
            deadline = asyncio.get_running_loop().time() + min(COMMISSION_WAIT_S, self.conn.timeout / 2)
            while set(waiting) & set(uncharged()) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            with self._lock:
                self._commission_waited.update(dict.fromkeys(waiting))
                while len(self._commission_waited) > COMMISSION_WAITED_KEPT:
                    del self._commission_waited[next(iter(self._commission_waited))]
        fills = _corrected([known.get(f.execution.execId, f) for f in fills])
        mine = [t for t in open_ if t.order.account in ("", account)]
        refs = {key: t.order.orderRef for key, t in ib.wrapper.trades.items() if isinstance(key, tuple)}
        return mine, [t for t in done if t.order.account in ("", account)], fills, refs

    async def _registered(self, ib: IB, account: str, refs: list[str]) -> set[str]:
        open_, done, fills, _ = await self._lists(ib, account)
        wanted = set(refs)
        return ({t.order.orderRef for t in open_ + done if t.order.orderRef in wanted}
                | {f.execution.orderRef for f in fills if f.execution.orderRef in wanted})

    def _order_id(self, ib: IB) -> int:
        """A fresh order id above every id of this clientId seen on this connection or used by this process."""
        me = ib.wrapper.clientId
        seen = [key[1] for key in ib.wrapper.trades if isinstance(key, tuple) and key[0] == me]
        seen += [f.execution.orderId for f in ib.wrapper.fills.values() if f.execution.clientId == me]
        ib.client.updateReqId(max([self._highest_order_id, *seen]) + 1)
        order_id = ib.client.getReqId()
        while (me, order_id) in ib.wrapper.trades:
            order_id = ib.client.getReqId()
        self._highest_order_id = order_id
        return order_id

    async def _send(self, ib: IB, account: str, contract: IbContract, specs: list[OrderSpec]) -> tuple[str, object]:
        if not ib.isConnected():
            raise _NotSent("the connection to TWS dropped before the order went out")
        trades: list[Trade] = []
        parent_id = 0
        try:
            for i, spec in enumerate(specs):
                order = shapes.ib_order(spec, account, order_id=self._order_id(ib),
                                        parent_id=parent_id if spec.parent_client_order_id else 0,
                                        transmit=i == len(specs) - 1)
                if i == 0:
                    parent_id = order.orderId
                trades.append(ib.placeOrder(contract, order))
        except ConnectionError as exc:
            if not trades:
                raise _NotSent(f"the connection to TWS dropped before the order went out ({exc})") from None
            raise
        while True:  # until every leg is acknowledged (a permId), one is refused, or the caller's deadline
            refused = [t for t in trades if t.orderStatus.status in REJECTING and _error_of(t)]
            if refused:
                reasons = "; ".join(f"{t.order.orderRef}: {_error_of(t)}" for t in refused)
                if len(refused) == len(trades) or refused[0] is trades[0]:
                    return "rejected", reasons
                return "ambiguous", f"part of the bracket was refused ({reasons}); reconciliation settles each leg"
            if all(t.order.permId or t.orderStatus.permId for t in trades):
                return "accepted", {t.order.orderRef: str(t.order.permId or t.orderStatus.permId) for t in trades}
            if not ib.isConnected():
                raise ConnectionError("the connection dropped before TWS acknowledged every leg")
            await asyncio.sleep(ACKNOWLEDGED_POLL_S)

    def reply(self, account: str, reply_id: str, confirmed: bool) -> PlaceResult:
        return PlaceResult("rejected", reason="TWS asks no confirmation questions over the API (precautionary "
                                              "settings are answered in TWS / IB Gateway's configuration)")

    # -- reading ------------------------------------------------------------------------------------------
    def _read(self, account: str, what: str) -> tuple[list[Trade], list[Trade], list[Fill], dict]:
        return self.conn.run(lambda ib: self._lists(ib, account), what=what)

    def orders(self, account: str) -> list[BrokerOrder]:
        """Every order TWS lists that can be reported without guessing. One of ours whose status or side our
        vocabulary lacks is left out (reconciliation then asks :meth:`order`, which says it cannot tell, and
        leaves it as it is); another program's such order is skipped, and noted once."""
        out, unclear = self._orders(*self._read(account, "the order lists"))
        self._answered([bo.client_order_id for bo in out if bo.client_order_id] + list(unclear))
        return out

    def _orders(self, open_, done, fills, refs) -> tuple[list[BrokerOrder], dict[str, str]]:
        """The orders (see :func:`_orders`), and ours that TWS reports in terms we cannot map (id -> why)."""
        out, unclear, skipped = _orders(open_, done, fills, refs)
        with self._lock:
            new = {perm: why for perm, why in skipped.items() if perm not in self._skipped}
            for perm, why in skipped.items():  # listed again: kept longest (the notes dropped are of gone orders)
                self._skipped.pop(perm, None)
                self._skipped[perm] = why
            for perm in list(self._skipped)[:max(0, len(self._skipped) - self.skipped_kept)]:  # the oldest go
                del self._skipped[perm]
        for perm, why in new.items():
            log.warning("TWS: another program's order (permId %s) is not reported: %s", perm, why)
        return out, unclear

    def order(self, account: str, client_order_id: str) -> BrokerOrder | None:
        """Found now, or None only when two reads on one live connection, the second past its settle time (a
        look just after a (re)connect waits that out, at most ``settle_s``), list it nowhere, TWS is connected to
        IBKR, and no leg of that id waits for TWS's answer (a mark in the database, of any process)."""
        first_epoch = self.conn.epoch
        for attempt in (1, 2):
            epoch = self.conn.epoch
            settled = self.conn.connected and not self.conn.settling()
            found = self._look(account, client_order_id)
            if found is not None:
                return found
            why = self._cannot_tell(client_order_id, first_epoch if attempt == 2 else epoch, settled)
            if why:
                raise OrderStatusUnknown(f"{client_order_id} is not listed by TWS, but {why}")
            if attempt == 1:
                time.sleep(max(CONFIRM_GAP_S, self.conn.settling()))
        return None  # every list TWS keeps, read twice on a settled live connection: it has no such order

    def _look(self, account: str, client_order_id: str) -> BrokerOrder | None:
        try:
            open_, done, fills, refs = self._read(account, f"the order lists (looking for {client_order_id})")
        except TwsError as exc:
            raise OrderStatusUnknown(f"TWS cannot be asked now: {exc}") from None
        listed, unclear = self._orders(open_, done, fills, refs)
        if client_order_id in unclear:
            self._answered([client_order_id])
            raise OrderStatusUnknown(f"TWS lists {client_order_id}, but {unclear[client_order_id]}")
        for bo in listed:
            if bo.client_order_id == client_order_id:
                self._answered([client_order_id], {client_order_id: bo.broker_order_id})
                return bo
        mine = [f for f in fills if f.execution.orderRef == client_order_id]
        if mine:
            self._answered([client_order_id])
            return _from_executions(mine, client_order_id)
        return None

    def _cannot_tell(self, client_order_id: str, epoch: int, settled: bool = False) -> str:
        """Why TWS's lists, read just now, do not prove an order absent ("" when they do). A leg sent and never
        answered stops waiting once TWS, asked on a settled connection at least ``mark_expiry_s`` after the
        placement, has listed it nowhere twice (``settled``: this read began on a settled connection)."""
        lost = self.conn.status()["ib_connectivity"] == "lost"
        try:
            sent = self.marks.waiting([client_order_id]).get(client_order_id)
            age = (datetime.now(UTC) - sent).total_seconds() if sent is not None else 0.0
            if sent is not None and settled and not lost and age >= self.mark_expiry_s and \
                    self.conn.epoch == epoch and self.conn.connected:
                looks = self.marks.missed(client_order_id)
                if looks == 0 or looks >= 2:
                    if looks:
                        log.warning("TWS: %s, sent %.0f s ago and never answered, is listed nowhere by TWS after "
                                    "%d looks on a settled connection: no longer waited for", client_order_id, age,
                                    looks)
                    sent = None
        except SQLAlchemyError as exc:
            return f"the database cannot be read for its placement marks ({type(exc).__name__})"
        if sent is not None:
            return (f"it was sent to TWS {age:.0f} s ago and never answered (TWS may not list the legs of a "
                    "bracket whose last leg never reached it)")
        if lost:
            return "TWS has lost its connection to IBKR's servers (1100), so its lists may be incomplete"
        if self.conn.epoch != epoch or not self.conn.connected:
            return "the connection to TWS changed while its lists were read"
        return ""

    def fills(self, account: str, since: datetime | None = None) -> list[BrokerFill]:
        _, _, fills, _ = self._read(account, "the executions")
        out = [shapes.broker_fill(f) for f in fills]
        return [f for f in out if since is None or f.time >= since]

    # -- cancelling ---------------------------------------------------------------------------------------
    def cancel(self, account: str, broker_order_id: str) -> bool:
        try:
            perm_id = int(broker_order_id)
        except ValueError:
            log.warning("TWS cancel: %r is not a TWS permId", broker_order_id)
            return False
        try:
            outcome = self.conn.run(lambda ib: self._cancel(ib, account, perm_id), what=f"cancelling {perm_id}")
        except TwsError as exc:
            log.warning("TWS cancel of %s: %s", perm_id, exc)
            return False
        if outcome is not True:
            log.warning("TWS did not accept the cancellation of %s: %s", perm_id, outcome)
            return False
        return True

    async def _cancel(self, ib: IB, account: str, perm_id: int):
        async with self.conn.keyed():
            open_ = await ib.reqAllOpenOrdersAsync()
        trade = next((t for t in open_ if t.order.permId == perm_id and t.order.account in ("", account)), None)
        if trade is None:
            return "not open at TWS"
        if trade.orderStatus.status == "Filled":
            return "it filled before the cancellation reached it"
        if trade.order.clientId != ib.wrapper.clientId:
            return (f"placed by clientId {trade.order.clientId}, and TWS lets only that client cancel it (this "
                    f"process is clientId {ib.wrapper.clientId}); cancel it there or in TWS")
        refused: list[str] = []

        def on_error(req_id, code, text, _contract) -> None:
            if req_id == trade.order.orderId and code not in (202,):
                refused.append(f"{code} {text}")

        ib.errorEvent += on_error
        try:
            ib.cancelOrder(trade.order)
            deadline = asyncio.get_running_loop().time() + self.conn.timeout / 2
            while asyncio.get_running_loop().time() < deadline:
                if refused:
                    return "; ".join(refused)
                state = trade.orderStatus.status
                if state in ("Cancelled", "ApiCancelled", "Filled") and any(e.status == state for e in trade.log[-1:]):
                    return True if state != "Filled" else "it filled before the cancellation reached it"
                await asyncio.sleep(ACKNOWLEDGED_POLL_S * 5)
            return True  # sent and not refused: TWS confirms later (the caller polls for CANCELLED)
        finally:
            ib.errorEvent -= on_error

    def sync(self, account: str, now: datetime, contracts: tuple[Contract, ...] = ()) -> None:
        """Nothing to do: IBKR's clock is the real one."""

    def describe(self) -> dict:
        """Connection details for status pages (never a secret)."""
        try:
            waiting = sorted(self.marks.waiting())
        except SQLAlchemyError as exc:
            waiting = [f"not readable: {type(exc).__name__}"]
        with self._lock:
            skipped = [{"perm_id": perm, "why": why} for perm, why in list(self._skipped.items())[-10:]]
        return {**self.conn.describe(), "account_configured": self._configured, "last_values": self.last_values,
                "unanswered_orders": waiting, "skipped_orders": skipped}


def _error_of(trade: Trade) -> str:
    errors = [f"{e.errorCode} {e.message}" for e in trade.log if e.errorCode and e.errorCode != 202]
    return errors[-1] if errors else ""


def _orders(open_: list[Trade], done: list[Trade], fills: list[Fill],
            ref_by_id: dict) -> tuple[list[BrokerOrder], dict[str, str], dict[int, str]]:
    """Each order once (by permId; a completed one over its open echo), children named by their parent's ref
    (``ref_by_id``: (clientId, orderId) -> orderRef of the orders this connection knows). Orders whose side or
    status cannot be mapped are not in the list: ours by client order id, others' by permId (each -> why)."""
    by_perm: dict[int, Trade] = {}
    for t in open_ + done:  # completed last: it wins
        perm = t.order.permId or t.orderStatus.permId
        if perm:
            by_perm[perm] = t
    ref_by_perm = {perm: t.order.orderRef for perm, t in by_perm.items()}
    ref_by_id = {**ref_by_id, **{(t.order.clientId, t.order.orderId): t.order.orderRef for t in open_
                                 if t.order.orderId}}
    fills_by_perm: dict[int, list[Fill]] = {}
    for f in fills:
        fills_by_perm.setdefault(f.execution.permId, []).append(f)
    out, unclear, skipped = [], {}, {}
    for perm, t in by_perm.items():
        o = t.order
        parent = ref_by_perm.get(getattr(o, "parentPermId", 0) or -1) or \
            (ref_by_id.get((o.clientId, o.parentId)) if o.parentId else None)
        try:
            out.append(shapes.broker_order(t, parent or None, fills_by_perm.get(perm, [])))
        except UnmappedOrder as exc:
            if shapes.ours(o.orderRef):
                unclear[o.orderRef] = f"in terms this adapter cannot map ({exc}), so its state is not guessed"
            else:
                skipped[perm] = str(exc)
    return out, unclear, skipped


def _correction(exec_id: str) -> tuple[str, int]:
    """An execId's base and correction number: IB sends a corrected execution as a new execId that differs
    only after the last period ("0001f4e8.6512b1c2.01.01" → ".01.02")."""
    base, _, suffix = exec_id.rpartition(".")
    try:
        return (base, int(suffix, 16)) if base else (exec_id, 0)
    except ValueError:
        return exec_id, 0


def _corrected(fills: list[Fill]) -> list[Fill]:
    """One fill per execution: the latest correction's values, under the execId first listed for it, so a
    fill the books hold already is not booked a second time under its correction's id."""
    groups: dict[str, list[Fill]] = {}
    for f in fills:
        groups.setdefault(_correction(f.execution.execId)[0], []).append(f)
    out = []
    for group in groups.values():
        group.sort(key=lambda f: _correction(f.execution.execId)[1])
        first, last = group[0], group[-1]
        if last is not first:
            last = last._replace(execution=dataclasses.replace(last.execution, execId=first.execution.execId))
        out.append(last)
    return out


def _from_executions(fills: list[Fill], coid: str) -> BrokerOrder:
    """An order TWS no longer lists, rebuilt from its executions (the filled part of it)."""
    qty = sum(f.execution.shares for f in fills)
    value = sum(f.execution.shares * f.execution.price for f in fills)
    first = fills[0]
    return BrokerOrder(broker_order_id=str(first.execution.permId), client_order_id=coid,
                       symbol=(first.contract.symbol or "").upper(), side=shapes.side(first.execution.side),
                       order_type="", quantity=qty, filled_quantity=qty, avg_fill_price=value / qty if qty else None,
                       status="FILLED")
