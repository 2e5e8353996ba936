"""An order whose fate is unknown stays UNKNOWN and is never resent blind: a bracket that reached TWS but whose
answer never came (the fake holds it), or whose connection dropped while we waited, is found by its orderRef
at reconciliation, and TWS ends up with exactly one bracket."""

from __future__ import annotations

import threading

from tests.integration.tws.tws_harness import (  # noqa: F401
    local_orders,
    make_app_fixture,
    steps,
    tws_fixture,
    until,
)
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.trading.reconcile import reconcile


def _run_demo_held(app, tws) -> tuple[int, dict]:
    user_id = init(app)["user_id"]
    tws.hold_next_order()
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    return user_id, run


def _one_bracket_at_tws_and_our_books_agree(app, tws) -> None:
    legs = local_orders(app)
    assert [o.order_ref for o in tws.orders] == [o.client_order_id for o in legs]
    assert tws.count("placeOrder") == 3
    assert [o.broker_order_id for o in legs] == [str(o.perm_id) for o in tws.orders]


def test_a_placement_tws_never_answered_is_unknown_then_found_by_its_order_ref(settings, tws, make_app):
    app = make_app(settings, tws, tws_timeout_s=1.5)
    user_id, run = _run_demo_held(app, tws)
    assert (run["status"], run["failed_step"]) == ("failed", "place_order")
    assert steps(run)["place_order"]["output"]["status"] == "ambiguous"
    assert "did not answer the order placement" in run["error"]
    legs = local_orders(app)
    assert [o.state for o in legs] == ["UNKNOWN"] * 3 and all(o.broker_order_id is None for o in legs)
    assert len(tws.orders) == 3 and {o.status for o in tws.orders} == {"PreSubmitted"}  # booked, unanswered

    report = reconcile(app, user_id)
    assert report["resent"] == [] and report["adopted"] == [] and report["position_mismatches"] == []
    assert sorted(n.split(":")[0] for n in report["notes"] if "found at the broker" in n) == \
        sorted(o.client_order_id for o in legs)
    assert [o.state for o in local_orders(app)] == ["SUBMITTED"] * 3
    _one_bracket_at_tws_and_our_books_agree(app, tws)

    tws.release_held()  # TWS answers at last: the entry fills at the last close
    until(lambda: tws.positions.get("SPY"), what="the held entry filling at the fake")
    again = reconcile(app, user_id)
    assert again["resent"] == [] and again["position_mismatches"] == []
    assert [f["client_order_id"] for f in again["fills"]] == [local_orders(app)[0].client_order_id]
    assert [(o.leg, o.state) for o in local_orders(app)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    _one_bracket_at_tws_and_our_books_agree(app, tws)


def test_a_drop_while_waiting_for_the_answer_leaves_it_unknown_and_the_reconnection_finds_it(settings, tws,
                                                                                              make_app):
    app = make_app(settings, tws, tws_timeout_s=10.0)
    user_id = init(app)["user_id"]
    conn = app.tws_connection()
    tws.hold_next_order()
    # The run waits for TWS's answer; the gateway drops every connection meanwhile (as at its daily restart).
    dropper = threading.Thread(target=lambda: (until(lambda: len(tws.orders) == 3, what="the bracket at the fake"),
                                               tws.drop_connections()))
    dropper.start()
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    dropper.join(30)
    assert (run["status"], run["failed_step"]) == ("failed", "place_order")
    assert "connection dropped" in run["error"]
    assert [o.state for o in local_orders(app)] == ["UNKNOWN"] * 3

    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    assert tws.seen_client_ids == [1, 1]  # the same clientId again: the orders stay ours to cancel
    report = reconcile(app, user_id)
    assert report["resent"] == [] and [o.state for o in local_orders(app)] == ["SUBMITTED"] * 3
    _one_bracket_at_tws_and_our_books_agree(app, tws)
    assert conn.status()["drops"] == 1
