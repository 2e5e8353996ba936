"""What can go wrong talking to IBKR, as exceptions the adapters can act on."""

from __future__ import annotations

from typing import Any

from ibind import ExternalBrokerError

from tradetrail.broker.port import BrokerError


class IbkrHttpError(ExternalBrokerError):
    """A non-2xx answer. A subclass of ibind's error so ibind passes it through unchanged."""

    def __init__(self, status: int, body: Any, text: str, retry_after: float | None = None):
        self.body, self.text, self.retry_after = body, text, retry_after
        super().__init__(f"HTTP {status}: {self.error_text or text[:300]}", status_code=status)

    @property
    def status(self) -> int:
        return int(self.status_code or 0)

    @property
    def error_text(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("error") or self.body.get("message") or "")
        return ""


class IbkrError(BrokerError):
    """An IBKR call failed; the message says which call and why."""


class NotAuthenticated(IbkrError):
    """No authenticated brokerage session (and reopening it did not help)."""


class RateLimited(IbkrError):
    """IBKR answered 429; requests are held back until the back-off ends."""


class BudgetUnavailable(RateLimited):
    """The pacing budget shared by every process (in Redis) cannot be consulted: the request is held back
    (not sent), as after a 429, rather than sent on a budget of this process alone."""


class GatewayUnavailable(IbkrError):
    """IBKR answered 503 (backend resetting or unavailable)."""


class Unreachable(IbkrError):
    """No answer: connection refused or dropped, or a timeout. For an order this outcome is ambiguous."""


class BadReply(IbkrError):
    """An answer that is not what the API documents."""
