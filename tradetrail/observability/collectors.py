"""What ``/metrics`` shows: the recorded metrics (this process's registry, or every process's files) and the
numbers that live elsewhere, read when scraped: executions, orders and schedule slots counted in the
database (one grouped count per table), and whether the broker answers healthy (asked at most every
``BROKER_TTL_S``, since an IBKR health check is a round trip to the gateway)."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from tradetrail.db.models import Execution, ScheduleSlot
from tradetrail.db.trading_models import Order
from tradetrail.observability import multiprocess

log = logging.getLogger(__name__)
BROKER_TTL_S = 15.0

_COUNTS = (
    ("tradetrail_executions", "Executions in the database, by status", "status",
     select(Execution.status, func.count()).group_by(Execution.status)),
    ("tradetrail_orders", "Orders in the database, by state", "state",
     select(Order.state, func.count()).group_by(Order.state)),
    ("tradetrail_schedule_slots", "Schedule slots in the database, by status (skipped and failed: lost)", "status",
     select(ScheduleSlot.status, func.count()).group_by(ScheduleSlot.status)),
)


class DatabaseCollector:
    """Grouped counts read at scrape time; a database out of reach shows as ``tradetrail_database_up 0``."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        up = GaugeMetricFamily("tradetrail_database_up", "Whether the counts below could be read")
        families = []
        try:
            with self.engine.connect() as conn:
                for name, doc, label, query in _COUNTS:
                    family = GaugeMetricFamily(name, doc, labels=[label])
                    for value, count in conn.execute(query).all():
                        family.add_metric([str(value)], count)
                    families.append(family)
            up.add_metric([], 1)
        except Exception:  # noqa: BLE001 - a scrape reports, it never fails
            log.warning("metrics: the database counts could not be read", exc_info=True)
            families = []
            up.add_metric([], 0)
        yield up
        yield from families


class BrokerCollector:
    """``tradetrail_broker_healthy{broker}``: 1 when authenticated, connected and not competing."""

    def __init__(self, broker):
        self.broker = broker
        self._lock = threading.Lock()
        self._at, self._healthy = 0.0, 0.0

    def _read(self) -> float:
        with self._lock:
            if time.monotonic() - self._at > BROKER_TTL_S:
                try:
                    self._healthy = 1.0 if self.broker.health().healthy else 0.0
                except Exception:  # noqa: BLE001
                    self._healthy = 0.0
                self._at = time.monotonic()
            return self._healthy

    def collect(self):
        family = GaugeMetricFamily("tradetrail_broker_healthy", "The default broker's session is usable",
                                   labels=["broker"])
        family.add_metric([self.broker.name], self._read())
        yield family


class _Joined:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


class Exposition:
    """One per served app: ``render()`` is the text a Prometheus scrape gets."""

    def __init__(self, app):
        self.database = DatabaseCollector(app.engine)
        self.broker = BrokerCollector(app.broker)

    def render(self) -> bytes:
        if multiprocess.active():
            from prometheus_client.multiprocess import MultiProcessCollector

            recorded = CollectorRegistry()
            MultiProcessCollector(recorded)  # every process's files, this one's included
        else:
            recorded = REGISTRY  # this process: our metrics, the IBKR adapter's, the process collector
        return generate_latest(_Joined(recorded, self.database, self.broker))
