"""The fake TWS's quirk hooks: what real TWS sends now and then that the plain order desk never does (an order
in a status or with a side the adapter does not map; executions listed twice, corrected, or whose commission
report comes late, or whose time comes without its zone; a fill that crosses a cancel). A mixin of ``FakeTWS``."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fakes.tws import wire
from tests.fakes.tws.book import FakeTwsExecution, commission_fields, exec_values


class QuirkDesk:
    def set_status(self, perm_id: int, status: str) -> None:
        """Give the order ``perm_id`` the TWS status ``status`` as it is listed from now on (a status outside
        the working ones lists it among the completed orders)."""

        def run() -> None:
            o = self._by_perm(perm_id)
            if o is None:
                raise ValueError(f"no order with permId {perm_id} at the fake TWS")
            o.status = status

        self._call(run)

    _exec_repeats = 1
    _fill_at_cancel = False

    def fill_at_cancel(self) -> None:
        """The next cancelOrder of a working order finds it filling: the order fills and TWS reports the fill
        (the cancellation never happens)."""
        with self._lock:
            self._fill_at_cancel = True
    _zoneless_times = False

    def zoneless_times(self, zoneless: bool = True) -> None:
        """Send execution times without their zone (New York time), as a TWS set so does."""
        with self._lock:
            self._zoneless_times = zoneless

    def repeat_executions(self, times: int = 2) -> None:
        """List every execution ``times`` times in answer to reqExecutions."""
        with self._lock:
            self._exec_repeats = times

    def execute(self, order_ref: str, shares: float, price: float, *, exec_id: str,
                commission: float | None = 1.0) -> FakeTwsExecution:
        """An execution of the order with this orderRef under ``exec_id`` (a correction: the same execId up to
        its last period, a higher number after it), sent to the order's client; its commission report only
        when ``commission`` is not None (``report_commission`` sends it later). The order itself is left as
        it is."""

        def run() -> FakeTwsExecution:
            o = next((k for k in reversed(self._orders) if k.order_ref == order_ref), None)
            if o is None:
                raise ValueError(f"no order with orderRef {order_ref!r} at the fake TWS")
            inst = self.instrument(o.conid)
            e = FakeTwsExecution(exec_id=exec_id, perm_id=o.perm_id, order_id=o.order_id, client_id=o.client_id,
                                 order_ref=o.order_ref, side="BOT" if o.action == "BUY" else "SLD", shares=shares,
                                 price=price, time=datetime.now(UTC), commission=commission or 0.0,
                                 conid=inst.conid, symbol=inst.symbol, account=o.account, cum_qty=shares,
                                 avg_price=price, exchange=inst.primary_exchange,
                                 commission_reported=commission is not None)
            self._executions.append(e)
            for c in self._owners(o):
                self._send(c, wire.encode(wire.EXEC_DETAILS, exec_values(-1, e, inst)))
                if e.commission_reported:
                    self._send(c, commission_fields(e))
            return e

        return self._call(run)

    def report_commission(self, exec_id: str, commission: float) -> None:
        """The late commission report of ``exec_id``, to every connection."""

        def run() -> None:
            e = next(k for k in self._executions if k.exec_id == exec_id)
            e.commission, e.commission_reported = commission, True
            for c in self._live():
                self._send(c, commission_fields(e))

        self._call(run)
