"""Fills read from TWS: each execution once (TWS may list one twice), a correction (a new execId differing
after its last period) replaces the fill it corrects instead of adding to it, a commission keeps IB's sign
(negative: a rebate), and a fill whose commission report has not come costs the wait once, not every read."""

from __future__ import annotations

import time

import pytest

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture  # noqa: F401
from tradetrail.domain.orders import client_order_id
from tradetrail.tws import broker as tws_broker

EXEC = "0001f4e8.6512b1c2.01"


@pytest.fixture(name="booked")
def booked_fixture(tws) -> str:
    ref = client_order_id("a-run", "entry")
    tws.book("SPY", "BUY", 10, order_ref=ref)
    return ref


def test_an_execution_listed_twice_is_one_fill(tws, make_broker, booked):
    _, broker = make_broker(tws)
    tws.repeat_executions(2)
    tws.execute(booked, 4, 100.0, exec_id=f"{EXEC}.01")
    tws.execute(booked, 6, 100.5, exec_id="0001f4e8.6512b1c3.01.01")
    fills = broker.fills(tws.account)
    assert sorted((f.exec_id, f.quantity) for f in fills) == [(f"{EXEC}.01", 4), ("0001f4e8.6512b1c3.01.01", 6)]
    assert broker.order(tws.account, booked).filled_quantity == 10


def test_a_correction_replaces_the_fill_it_corrects(tws, make_broker, booked):
    _, broker = make_broker(tws)
    tws.execute(booked, 5, 100.0, exec_id=f"{EXEC}.01", commission=1.0)
    tws.execute(booked, 5, 100.25, exec_id=f"{EXEC}.02", commission=1.1)
    [fill] = broker.fills(tws.account)
    # the corrected values, under the id first listed (a fill the books hold already is not booked twice)
    assert (fill.exec_id, fill.quantity, fill.price, fill.commission) == (f"{EXEC}.01", 5, 100.25, 1.1)
    order = broker.order(tws.account, booked)
    assert (order.filled_quantity, order.avg_fill_price) == (5, 100.25)


def test_a_rebate_keeps_its_sign(tws, make_broker, booked):
    _, broker = make_broker(tws)
    tws.execute(booked, 5, 100.0, exec_id=f"{EXEC}.01", commission=-0.35)
    assert [f.commission for f in broker.fills(tws.account)] == [-0.35]


def test_a_missing_commission_report_is_waited_for_once_per_execution(tws, make_broker, booked, monkeypatch):
    monkeypatch.setattr(tws_broker, "COMMISSION_WAIT_S", 4.0)
    _, broker = make_broker(tws, tws_timeout_s=10.0)
    tws.execute(booked, 5, 100.0, exec_id=f"{EXEC}.01", commission=None)
    started = time.monotonic()
    assert [f.commission for f in broker.fills(tws.account)] == [0.0]  # unknown yet: reported as 0
    assert time.monotonic() - started >= 4.0
    started = time.monotonic()
    for _ in range(3):
        assert [f.commission for f in broker.fills(tws.account)] == [0.0]
    assert time.monotonic() - started < 4.0  # three reads, no second wait (each would take 4 s)

    tws.report_commission(f"{EXEC}.01", 1.25)  # late: read afresh it shows (docs/tws.md: the books keep 0)
    deadline = time.monotonic() + 20
    while broker.fills(tws.account)[0].commission != 1.25:
        assert time.monotonic() < deadline, "the late commission report never showed"
        time.sleep(0.05)
