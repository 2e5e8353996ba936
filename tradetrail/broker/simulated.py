"""The built-in simulated broker (the embedded default). It runs in-process, so its session is healthy
whenever the service runs; order handling arrives with the trading-core issue."""

from __future__ import annotations

from tradetrail.broker.port import BrokerHealth


class SimulatedBroker:
    name = "simulated"

    def health(self) -> BrokerHealth:
        return BrokerHealth(broker=self.name, authenticated=True, connected=True, competing=False, paper=True,
                            message="in-process simulated broker")
