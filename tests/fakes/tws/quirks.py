"""The fake TWS's quirk hooks: what real TWS sends now and then that the plain order desk never does (an order
in a status or with a side the adapter does not map). A mixin of ``FakeTWS``."""

from __future__ import annotations


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
