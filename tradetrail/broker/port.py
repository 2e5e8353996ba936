"""Broker port. This module grows with the trading-core issue (orders, fills, positions); for now it holds
the session health every run checks first, so an unhealthy broker fails the run at ``check_broker`` with a
clear reason instead of surfacing later as "0 bars"."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol


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


class Broker(Protocol):
    name: str

    def health(self) -> BrokerHealth: ...
