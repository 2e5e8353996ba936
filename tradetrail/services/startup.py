"""What the service does when it starts and while it runs, whichever face started it."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from tradetrail.db.models import User
from tradetrail.db.trading_models import Order
from tradetrail.services.reconcile import reconcile

log = logging.getLogger(__name__)
KNOWN_BROKERS = ("simulated", "ibkr_web")


def reconcile_all(app) -> dict[str, dict]:
    """Reconcile every user's account at the default broker, and at any other broker a strategy has sent
    orders to (reported as ``user@broker``); one failing account does not stop the others."""
    with app.Session() as s:
        users = s.execute(select(User.id, User.username)).all()
        plan = [(app.broker.name, users)]
        for broker in sorted(set(s.scalars(select(Order.broker).distinct())) - {app.broker.name}):
            if broker in KNOWN_BROKERS:
                plan.append((broker, s.execute(select(User.id, User.username).where(User.id.in_(
                    select(Order.user_id).where(Order.broker == broker)))).all()))
    reports = {}
    for broker, who in plan:
        view = app.with_broker(broker)
        for user_id, name in who:
            key = name if broker == app.broker.name else f"{name}@{broker}"
            try:
                reports[key] = reconcile(view, user_id)
            except Exception as exc:  # noqa: BLE001 - logged and reported; the next round tries again
                log.exception("reconciliation failed for %s", key)
                reports[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return reports


class PeriodicReconciler:
    """A daemon thread that reconciles every ``interval`` seconds until stopped."""

    def __init__(self, app, interval: float):
        self.app, self.interval = app, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            reconcile_all(self.app)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
