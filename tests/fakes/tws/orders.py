"""The fake TWS's order desk: placeOrder (booked silently until a leg arrives with transmit), the simple fill
rules, brackets and their implicit one-cancels-all, cancel, the open / completed order and execution
queries, and the order scenario hooks (reject, partial fills, hold, fill by hand, another program's order).
A mixin of ``FakeTWS``: every method runs on the fake's loop with its lock held."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fakes.tws import wire
from tests.fakes.tws.book import (
    FakeTwsExecution,
    FakeTwsOrder,
    commission_fields,
    completed_order_values,
    exec_values,
    open_order_values,
    order_status_fields,
    tws_time,
)
from tests.fakes.tws.conn import Conn
from tests.fakes.tws.market import NY, TwsInstrument
from tests.fakes.tws.wire import to_int, to_price

TEXT = {
    103: "Duplicate order id",
    202: "Order Canceled - reason:",
}
REJECT_TEXT = ("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
               "EQUITY WITH LOAN VALUE [0.00 USD] MUST EXCEED THE INITIAL MARGIN [5000.00 USD]")


class OrderDesk:
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

    def _place_order(self, conn: Conn, f: list[str]) -> None:
        if self._drop_at is not None:
            self._drop_at -= 1
            if self._drop_at <= 0:  # the connection dies with this leg unread
                self._drop_at = None
                for c in list(self._conns):
                    self._close(c)
                return
        order_id = int(f[1])
        assert conn.client_id is not None
        found = self._matches(to_int(f[2]), f[3], f[4], f[9], f[10], f[11])
        if len(found) != 1:
            self._error(conn, order_id, 200, TEXT[200])
            return
        inst = found[0]
        qty, lmt, aux, transmit, parent_id = float(f[17]), to_price(f[19]), to_price(f[20]), f[27] == "1", to_int(f[28])
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


    def _cancel(self, o: FakeTwsOrder) -> None:
        o.status, o.completed_time = "Cancelled", tws_time(datetime.now(UTC))
        if not o.held:
            self._report(o, status_only=True)
            for c in self._owners(o):
                self._error(c, o.order_id, 202, TEXT[202])
        o.held = False
        for child in [k for k in self._orders if k.parent_perm_id == o.perm_id and k.working]:
            self._cancel(child)

    def _cancel_order(self, conn: Conn, f: list[str]) -> None:
        order_id = int(f[2])
        assert conn.client_id is not None
        o = self._working(conn.client_id, order_id)
        if o is not None and self._fill_at_cancel:  # the fill crossed the cancel: TWS reports the fill only
            self._fill_at_cancel = False
            self._execute(o, o.remaining, o.lmt_price or o.aux_price or self.last_close(o.symbol))
            return
        if o is not None:
            self._cancel(o)
            return
        done = [k for k in self._orders if k.client_id == conn.client_id and k.order_id == order_id]
        if done:
            self._error(conn, order_id, 10148, f"OrderId {order_id} that needs to be cancelled cannot be "
                                               f"cancelled, state: {done[-1].status}.")
        else:
            self._error(conn, order_id, 135, f"Can't find order with id ={order_id}")

    def _req_global_cancel(self, conn: Conn, f: list[str]) -> None:
        for o in [k for k in self._orders if k.working]:
            self._cancel(o)

    def _send_open(self, conn: Conn, orders: list[FakeTwsOrder]) -> None:
        for o in orders:
            inst = self.instrument(o.conid)
            self._send(conn, wire.encode(wire.OPEN_ORDER, open_order_values(o, inst)))
            self._send(conn, order_status_fields(o))
        self._send(conn, [53, 1])

    def _listed(self, conn: Conn, o: FakeTwsOrder) -> bool:
        """A working order, unless it is an untransmitted leg of another session that ``hide_untransmitted``
        keeps from later connections (as real TWS may)."""
        return o.working and not (self._hide_untransmitted and o.status == "PendingSubmit"
                                  and o.connection != conn.serial)

    def _req_open_orders(self, conn: Conn, f: list[str]) -> None:
        self._send_open(conn, [o for o in self._orders if self._listed(conn, o) and o.client_id == conn.client_id])

    def _req_all_open_orders(self, conn: Conn, f: list[str]) -> None:
        self._send_open(conn, [o for o in self._orders if self._listed(conn, o)])

    def _req_completed_orders(self, conn: Conn, f: list[str]) -> None:
        for o in [k for k in self._orders if not k.working]:
            self._send(conn, wire.encode(wire.COMPLETED_ORDER, completed_order_values(o, self.instrument(o.conid))))
        self._send(conn, [102])

    def _req_executions(self, conn: Conn, f: list[str]) -> None:
        req_id, client_id, acct, since, symbol, sec_type, exchange, side = (
            int(f[2]), to_int(f[3]), f[4], f[5], f[6], f[7], f[8], f[9])
        after = _filter_time(since)
        for e in self._executions:
            if ((client_id and e.client_id != client_id) or (acct and e.account != acct)
                    or (symbol and e.symbol != symbol.upper()) or (sec_type and sec_type != "STK")
                    or (exchange and exchange != e.exchange) or (side and not _side_matches(side, e.side))
                    or (after is not None and e.time < after)):
                continue
            for _ in range(self._exec_repeats):  # real TWS may list one execution more than once
                self._send(conn, wire.encode(wire.EXEC_DETAILS, exec_values(req_id, e, self.instrument(e.conid),
                                                                         self._zoneless_times)))
                if e.commission_reported:
                    self._send(conn, commission_fields(e))
        self._send(conn, [55, 1, req_id])


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

    def drop_at_placement(self, n: int) -> None:
        """When the ``n``-th placeOrder from now arrives, every connection is closed and that leg is lost
        (the earlier legs of a bracket stay booked, untransmitted)."""
        with self._lock:
            self._drop_at = n

    def hide_untransmitted(self, hide: bool = True) -> None:
        """Keep untransmitted legs (transmit false, never followed by the leg that transmits) out of the
        open-order lists of every later connection, as real TWS may (ib_insync #416)."""
        with self._lock:
            self._hide_untransmitted = hide

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
