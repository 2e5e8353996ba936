"""Broker port: what every broker adapter (simulated, IBKR Web API, later TWS) implements.

Shaped by IBKR's semantics: an order carries our client order id (``cOID``, echoed back as ``order_ref``);
placing may end *accepted*, *rejected* (with the broker's reason), *needs_confirmation* (questions to answer
with :meth:`Broker.reply`) or *ambiguous* (timeout, 5xx, connection lost: the order may exist). An adapter
never retries a placement by itself; the order manager resolves ambiguity by reconciliation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Protocol

from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import OrderSpec


@dataclass(frozen=True)
class BrokerHealth:
    """IBKR's notion of healthy: authenticated, connected, and no competing session."""

    broker: str
    authenticated: bool
    connected: bool
    competing: bool
    paper: bool
    message: str = ""

    @property
    def healthy(self) -> bool:
        return self.authenticated and self.connected and not self.competing

    def to_dict(self) -> dict:
        return {**asdict(self), "healthy": self.healthy}


@dataclass(frozen=True)
class Question:
    """A confirmation the broker asks before accepting (IBKR: reply id, message ids like ``o163``, text)."""

    reply_id: str
    message_ids: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class PlaceResult:
    status: str  # accepted | rejected | needs_confirmation | ambiguous
    broker_order_ids: dict[str, str] = field(default_factory=dict)  # client order id -> broker order id
    reason: str = ""
    questions: tuple[Question, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it (open or recently done)."""

    broker_order_id: str
    client_order_id: str | None  # IBKR order_ref; None for orders placed elsewhere
    symbol: str
    side: str
    order_type: str
    quantity: float
    filled_quantity: float
    avg_fill_price: float | None
    status: str  # our OrderState vocabulary: SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED
    limit_price: float | None = None
    stop_price: float | None = None
    parent_client_order_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class BrokerFill:
    exec_id: str
    broker_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    quantity: float
    price: float
    commission: float
    time: datetime


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    conid: int | None
    quantity: float
    avg_cost: float
    market_price: float | None = None


@dataclass(frozen=True)
class AccountValues:
    account: str
    cash: float
    equity: float  # net liquidation value
    currency: str = "USD"
    paper: bool = True


class BrokerError(Exception):
    """A broker call failed in a way that is not about one order (session, permissions, transport)."""


class OrderStatusUnknown(BrokerError):
    """The broker cannot tell right now whether it has an order (its lists are incomplete or unreachable).
    Never read this as "absent": the order stays UNKNOWN until a later look settles it."""


class Broker(Protocol):
    name: str
    simulated: bool  # its books are our own tables: per-user accounts, our commission schedule

    def health(self) -> BrokerHealth: ...

    def account(self, user_id: int, strategy_id: int | None = None) -> str:
        """The account id this user trades with at this broker: the one the user's real-clock strategies share,
        or with ``strategy_id`` the account of that one replay-clock strategy alone (its market clock is its own,
        so nothing else may move it). Only a simulator has such accounts; a real broker raises BrokerError."""
        ...

    def account_values(self, account: str) -> AccountValues: ...

    def account_state(self, account: str) -> tuple[AccountValues, list[BrokerPosition]]:
        """:meth:`account_values` and :meth:`positions` together, for a caller that needs both (the risk
        gate): a broker that can answer both from one read does."""
        ...

    def place(self, account: str, contract: Contract, orders: list[OrderSpec]) -> PlaceResult:
        """Place one order or a bracket (parent first). Never retried by the adapter."""
        ...

    def reply(self, account: str, reply_id: str, confirmed: bool) -> PlaceResult: ...

    def orders(self, account: str) -> list[BrokerOrder]:
        """Open orders and those finished in the current session, each with its client order id if any."""
        ...

    def order(self, account: str, client_order_id: str) -> BrokerOrder | None:
        """One order by our client order id, however old; None only if the broker provably has no such order;
        :class:`OrderStatusUnknown` when it cannot tell."""
        ...

    def fills(self, account: str, since: datetime | None = None) -> list[BrokerFill]: ...

    def positions(self, account: str) -> list[BrokerPosition]: ...

    def cancel(self, account: str, broker_order_id: str) -> bool:
        """Ask to cancel; True if the request was accepted (acceptance is not yet cancellation)."""
        ...

    def sync(self, account: str, now: datetime, contracts: tuple[Contract, ...] = ()) -> None:
        """Let time pass up to ``now`` for what the account holds or works, and for ``contracts`` (the
        simulator fills against bars; a real broker has nothing to do)."""
        ...
