"""What the service does when it starts and while it runs, whichever face started it."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from tradetrail.db.models import User
from tradetrail.db.trading_models import TradingAccount
from tradetrail.runtime.registries import BROKERS
from tradetrail.trading.reconcile import reconcile_account
from tradetrail.trading.trading_accounts import shared_account

log = logging.getLogger(__name__)


def reconcile_all(app) -> dict[str, dict]:
    """Reconcile every account of every user: each user's shared account at the default broker (reported
    under the user's name), the shared account at any other broker one of their strategies used
    (``user@broker``), and every other account of theirs, e.g. a replay-clock strategy's own
    (``user@broker:account``). One failing account does not stop the others."""
    with app.Session() as s:
        users = s.execute(select(User.id, User.username)).all()
        registered = s.execute(select(TradingAccount.user_id, TradingAccount.broker, TradingAccount.account)
                               .order_by(TradingAccount.broker, TradingAccount.account)).all()
    reports: dict[str, dict] = {}

    def run(key: str, broker: str, user_id: int, account: str | None) -> str | None:
        try:
            view = app.with_broker(broker)
            report = reconcile_account(view, user_id, account if account is not None else shared_account(view, user_id))
        except Exception as exc:  # noqa: BLE001 - logged and reported; the next round tries again
            log.exception("reconciliation failed for %s", key)
            reports[key] = {"error": f"{type(exc).__name__}: {exc}"}
            return None
        reports[key] = report
        return report["account"]

    names = dict(users)
    done: set[tuple[int, str, str]] = set()
    for user_id, name in users:
        account = run(name, app.broker.name, user_id, None)
        if account is not None:
            done.add((user_id, app.broker.name, account))
    for broker in sorted({b for _, b, _ in registered} - {app.broker.name}):
        if broker not in BROKERS:
            continue
        for user_id in sorted({u for u, b, _ in registered if b == broker}):
            account = run(f"{names[user_id]}@{broker}", broker, user_id, None)
            if account is not None:
                done.add((user_id, broker, account))
    for user_id, broker, account in registered:
        if (user_id, broker, account) not in done and broker in BROKERS:
            run(f"{names[user_id]}@{broker}:{account}", broker, user_id, account)
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
