"""What can go wrong talking to TWS / IB Gateway, as exceptions the adapters and the order manager act on."""

from __future__ import annotations

from tradetrail.broker.port import BrokerError


class TwsError(BrokerError):
    """A TWS call failed; the message says which call and why."""


class NotConnected(TwsError):
    """No API connection to TWS / IB Gateway now (not running, restarting, refused, dropped). Nothing sent
    while it lasts; a request that was in flight when the connection dropped has an unknown outcome."""


class ClientIdInUse(NotConnected):
    """Every clientId this process may use is held by another connection (TWS error 326)."""


class RequestTimedOut(TwsError):
    """TWS did not answer a request in time (for an order: its fate is unknown)."""


class RequestFailed(TwsError):
    """TWS answered a request with an error code (``code``) tied to that request."""

    def __init__(self, code: int, message: str):
        self.code, self.text = code, message
        super().__init__(f"TWS error {code}: {message}")


class UnmappedOrder(TwsError):
    """TWS reports an order with a side or status our vocabulary lacks (another program's SSHORT, a status
    newer than this adapter): it cannot be reported without guessing."""
