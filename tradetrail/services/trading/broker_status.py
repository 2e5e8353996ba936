"""The broker connection as a person wants to see it (``tradetrail broker status``, ``/health``), and the
IBKR keep-alive a long-running service starts. Never returns a secret."""

from __future__ import annotations

import logging

from tradetrail.broker.port import BrokerError
from tradetrail.runtime.registries import uses_tws, uses_web_api

log = logging.getLogger(__name__)


def broker_status(app, *, user_id: int | None = None) -> dict:
    """Health (authenticated, connected, not competing), the account traded, and session details."""
    broker = app.broker
    out: dict = {"broker": broker.name, "healthy": False}
    try:
        health = broker.health()
        out["health"] = health.to_dict()
        out["healthy"] = health.healthy
    except Exception as exc:  # noqa: BLE001 - a status page reports, it does not raise
        out["health"] = {"error": f"{type(exc).__name__}: {exc}"}
    if out["healthy"] and (user_id is not None or not getattr(broker, "simulated", False)):
        try:
            out["account"] = broker.account(user_id if user_id is not None else 0)
        except (BrokerError, KeyError) as exc:
            out["account_error"] = str(exc)
    describe = getattr(broker, "describe", None)
    out["session"] = describe() if callable(describe) else {}
    return out


class ReconcileOnReconnect:
    """TWS / IB Gateway: every account reconciled after each reconnection (the gateway's daily restart, a drop),
    on top of the start-up and periodic reconciliation. TWS needs no keep-alive: its connection reconnects by
    itself."""

    def __init__(self, app):
        from tradetrail.runtime.startup import reconcile_all

        def reconcile(epoch: int) -> None:
            try:
                reports = reconcile_all(app)
            except Exception:  # noqa: BLE001 - logged; the periodic reconciliation tries again
                log.exception("reconciliation after TWS reconnection %d failed", epoch)
                return
            self.runs.append(epoch)
            log.info("TWS reconnected (epoch %d): reconciled %d account(s)", epoch, len(reports))

        self.runs: list[int] = []
        self._remove = app.tws_connection().on_reconnect(reconcile)

    def stop(self) -> None:
        self._remove()


def start_session_keeper(app):
    """Start the IBKR keep-alive (a tickle every ``TRADETRAIL_IBKR_KEEPALIVE_S``) when the default broker or
    market data is IBKR's Client Portal, or for TWS / IB Gateway the reconciliation after every reconnection;
    returns it (call ``.stop()`` on shutdown) or None when nothing needs it."""
    s = app.settings
    if not uses_web_api(s.broker, s.market_data):
        return ReconcileOnReconnect(app) if uses_tws(s.broker, s.market_data) else None
    from tradetrail.ibkr.client import SessionKeeper

    keeper = SessionKeeper(app.ibkr_session(), s.ibkr_keepalive_s).start()
    log.info("IBKR keep-alive started (every %.0f s)", s.ibkr_keepalive_s)
    return keeper
