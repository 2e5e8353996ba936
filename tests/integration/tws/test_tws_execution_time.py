"""An execution time TWS sends without a zone is read in TWS's time zone (TRADETRAIL_TWS_TIMEZONE, New York by
default), not in this host's: ib_async reads it with IB.TimezoneTWS, which the connection sets."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture  # noqa: F401
from tradetrail.domain.orders import client_order_id


@pytest.fixture(name="host_in_tokyo")
def host_in_tokyo_fixture():
    """This process's local time zone is Tokyo's for the test (New York's is 13 or 14 hours behind)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_zoneless_execution_time_is_read_in_tws_time_zone_not_the_hosts(tws, make_broker, host_in_tokyo):
    assert time.localtime().tm_gmtoff == 9 * 3600
    _, broker = make_broker(tws)
    ref = client_order_id("a-run", "entry")
    tws.book("SPY", "BUY", 5, order_ref=ref)
    tws.zoneless_times()
    execution = tws.execute(ref, 5, 100.0, exec_id="0001f4e8.6512b1c2.01.01")
    [fill] = broker.fills(tws.account)
    sent = execution.time.replace(microsecond=0)
    assert fill.time.tzinfo is not None and abs(fill.time - sent) <= timedelta(seconds=1), (fill.time, sent)
    assert fill.time <= datetime.now(UTC)
