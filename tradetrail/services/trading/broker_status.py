"""The broker connection as a person wants to see it (``tradetrail broker status``, ``/health``), and the
IBKR keep-alive a long-running service starts. Never returns a secret."""

from __future__ import annotations

import logging

from tradetrail.broker.port import BrokerError
from tradetrail.runtime.registries import uses_web_api

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


def start_session_keeper(app):
    """Start the IBKR keep-alive (a tickle every ``TRADETRAIL_IBKR_KEEPALIVE_S``) when the default broker or
    market data is IBKR's Client Portal; returns the keeper (call ``.stop()`` on shutdown) or None when nothing
    needs it (TWS / IB Gateway needs no keep-alive: its connection reconnects by itself)."""
    s = app.settings
    if not uses_web_api(s.broker, s.market_data):
        return None
    from tradetrail.ibkr.client import SessionKeeper

    keeper = SessionKeeper(app.ibkr_session(), s.ibkr_keepalive_s).start()
    log.info("IBKR keep-alive started (every %.0f s)", s.ibkr_keepalive_s)
    return keeper
