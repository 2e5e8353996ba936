"""Prometheus counters of what this process asked of IBKR, in the default registry (``/metrics`` and its
multi-process set-up live elsewhere; this module only defines and increments).

The ``endpoint`` label is the pacing class of a request (:func:`tradetrail.ibkr.pacing.endpoint_of`:
``live_orders``, ``history``, ``other``...), never the raw path: paths carry account ids, conids and reply ids,
which would make the label set unbounded and leak identifiers into a monitoring system.
"""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter("tradetrail_ibkr_requests_total", "Requests sent to IBKR, by pacing class", ["endpoint"])
RATE_LIMITED = Counter("tradetrail_ibkr_429_total", "429 answers from IBKR, by pacing class", ["endpoint"])
PACING_WAIT = Counter("tradetrail_ibkr_pacing_wait_seconds_total",
                      "Seconds requests waited for IBKR's pacing budget before being sent, by pacing class",
                      ["endpoint"])
