"""An order TWS reports in terms the adapter cannot map (another program's SSHORT, an unusual status) no longer
breaks every read of the account: another program's is skipped and noted once; one of ours is neither
reported absent nor guessed (order() cannot tell; orders() leaves it out, so reconciliation asks order())."""

from __future__ import annotations

import pytest

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture  # noqa: F401
from tradetrail.broker.port import OrderStatusUnknown
from tradetrail.domain.orders import client_order_id


def test_another_programs_order_with_an_unmapped_side_or_status_is_skipped_and_noted_once(tws, make_broker):
    _, broker = make_broker(tws)
    plain = tws.book("SPY", "BUY", 5, order_ref="someone-else")
    shorted = tws.book("SPY", "SSHORT", 5)
    odd = tws.book("AAPL", "BUY", 5)
    tws.set_status(odd.perm_id, "PendingReplace")

    for _ in range(2):
        listed = broker.orders(tws.account)
        assert [bo.broker_order_id for bo in listed] == [str(plain.perm_id)]
    skipped = broker.describe()["skipped_orders"]
    assert sorted(row["perm_id"] for row in skipped) == sorted([shorted.perm_id, odd.perm_id])
    assert any("SSHORT" in row["why"] for row in skipped) and any("PendingReplace" in row["why"] for row in skipped)
    assert broker.order(tws.account, client_order_id("another-run", "entry")) is None  # still provably absent


def test_an_order_of_ours_in_an_unmapped_status_is_neither_absent_nor_guessed(tws, make_broker):
    _, broker = make_broker(tws)
    ours = client_order_id("a-run", "entry")
    booked = tws.book("SPY", "BUY", 5, order_ref=ours)
    assert broker.order(tws.account, ours).status == "SUBMITTED"
    tws.set_status(booked.perm_id, "PendingReplace")

    assert broker.orders(tws.account) == []  # left out: reconciliation then asks order(), which cannot tell
    with pytest.raises(OrderStatusUnknown, match="PendingReplace"):
        broker.order(tws.account, ours)
    assert broker.describe()["skipped_orders"] == []


def test_the_notes_of_skipped_orders_are_capped_keeping_the_latest(tws, make_broker):
    """Another program placing unmappable orders all day must not grow the notes without bound."""
    _, broker = make_broker(tws)
    assert broker.skipped_kept == 100  # the default cap; a small one here keeps the test quick
    broker.skipped_kept = 3
    booked = []
    for _ in range(5):
        booked.append(tws.book("SPY", "SSHORT", 1).perm_id)
        broker.orders(tws.account)
    assert [row["perm_id"] for row in broker.describe()["skipped_orders"]] == booked[-3:]
    assert len(broker._skipped) == 3
