"""Issue #12, item 1: a replay-clock strategy and a real-clock strategy on the same instrument (SPX).

They shared the user's simulated account, where the simulator keeps one market clock per instrument: the
real-clock run moved SPX's clock to today, and the demo's working bracket filled against bars years after the
demo's own clock ("stop filled 2005-03-23 while the demo stood at 2005-02-22"); its next run found no
position. Now each replay-clock strategy trades on a simulated account of its own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from tests.support.replay_accounts import step
from tradetrail.db.sim_models import SimClock, SimOrder
from tradetrail.db.trading_models import Fill, Order
from tradetrail.services.runs.executions import get_execution, run_strategy


def test_a_real_clock_run_on_the_same_symbol_leaves_the_replayed_books_alone(two_clocks):
    app, user_id, _ = two_clocks
    first = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # as of 2005-01-03
    assert step(first, "place_order")["output"]["status"] == "accepted", first["error"]
    demo_account = step(first, "risk_check")["input"]["account"]
    with app.Session() as s:
        bracket = {o.client_order_id: o.leg for o in s.scalars(select(Order).where(Order.strategy_id.is_not(None)))}

    paper = get_execution(app, run_strategy(app, user_id, "paper").execution_id)  # as of now
    assert paper["status"] == "succeeded", paper["error"]
    paper_account = step(paper, "risk_check")["input"]["account"]

    # The demo's bracket is still working, its SPX clock still at its own session: nothing filled in its future.
    with app.Session() as s:
        at_broker = {o.client_order_id: (o.status, o.closed_at) for o in s.scalars(
            select(SimOrder).where(SimOrder.client_order_id.in_(bracket)))}
        clock = s.get(SimClock, (demo_account, "SPX"))
    assert at_broker == {coid: ("SUBMITTED", None) for coid in bracket}
    assert clock.clock == datetime.fromisoformat(first["as_of"])
    assert paper_account != demo_account

    # The demo's next session: its entry fills at that session's open, its stop and target keep working.
    second = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # as of 2005-01-04
    assert second["status"] == "succeeded", second["error"]
    seen = step(second, "risk_check")["input"]
    assert seen["account"] == demo_account
    with app.Session() as s:
        entry = s.scalar(select(Order).where(Order.client_order_id.in_(bracket), Order.leg == "entry"))
        fills = s.scalars(select(Fill).where(Fill.order_id == entry.id)).all()
    assert seen["inputs"]["position_qty"] == entry.quantity > 0  # the position is there
    assert seen["inputs"]["open_protection"] == 2  # and so are its stop and target
    assert [f.filled_at for f in fills] == [datetime.fromisoformat(second["as_of"])]

    # Each strategy's orders went to its own account: the demo's to its own, the real-clock one's to the shared.
    with app.Session() as s:
        by_run = {e: set(s.scalars(select(Order.account).where(Order.execution_id == e)))
                  for e in (first["id"], paper["id"], second["id"])}
    assert by_run[first["id"]] == {demo_account} and by_run[second["id"]] <= {demo_account}
    assert by_run[paper["id"]] <= {paper_account}
