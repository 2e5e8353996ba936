"""Review findings on the exit path, on the real steps, the real simulated broker and the real database.

A real broker fills protective orders whenever the market says so, not when our run looks. Here the market
moves between the run's risk_check (which sized the exit from our books) and its place_order (which cancels
the protection and sells): a step inserted between the two lets the simulator's clock pass, as the market
would in the seconds or minutes between the two steps (or as another run on the same account does when it
calls ``broker.sync``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.support.helpers import demo, demo_account
from tradetrail.db.sim_models import SimOrder, SimPosition
from tradetrail.services.runs.executions import create_execution, get_execution, run_strategy
from tradetrail.services.strategies.configs import get_strategy
from tradetrail.workflow.context import StepOutcome
from tradetrail.workflow.executor import execute
from tradetrail.workflow.pipeline import STEPS
from tradetrail.workflow.recorder import LineageRecorder


def _steps_with(after: str, name: str, fn):
    i = [n for n, _ in STEPS].index(after) + 1
    return [*STEPS[:i], (name, fn), *STEPS[i:]]


def _run_with(app, user_id: int, steps) -> dict:
    with app.Session() as s:
        strategy = get_strategy(s, user_id, "demo")
    ctx = create_execution(app, strategy)
    summary = execute(ctx, steps, LineageRecorder(app.engine, app.artifacts))
    return get_execution(app, summary.execution_id)


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_exit_after_the_stop_or_target_filled_meanwhile_does_not_go_short(app):
    user_id, strategy = demo(app)
    first = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # 2005-01-03: the bracket
    assert _step(first, "place_order")["output"]["status"] == "accepted"
    account = demo_account(app, user_id, strategy)

    def market_moves(ctx) -> StepOutcome:
        # risk_check saw the entry filled and approved an exit of the whole position; before place_order
        # runs, the market reaches one of the bracket's children (here: weeks pass in the simulator).
        later = ctx.as_of + timedelta(days=60)
        ctx.app.broker.sync(ctx.account, later, (ctx.contract,))
        return StepOutcome(output={"synced_to": later.isoformat()})

    second = _run_with(app, user_id, _steps_with("risk_check", "market_moves", market_moves))  # 2005-01-04
    risk = _step(second, "risk_check")["output"]
    assert risk["action"] == "exit" and risk["approved"] is True and risk["quantity"] == 16
    with app.Session() as s:
        children = {r.client_order_id.rsplit("-", 1)[1]: r.status for r in s.scalars(
            select(SimOrder).where(SimOrder.parent_client_order_id.is_not(None)))}
    assert sorted(children.values()) == ["CANCELLED", "FILLED"], children  # the scenario: a child filled

    # Let the exit (if one was sent) fill at the next open.
    app.broker.sync(account, datetime.fromisoformat(second["as_of"]) + timedelta(days=70))
    with app.Session() as s:
        held = s.scalar(select(SimPosition.quantity).where(SimPosition.account == account,
                                                           SimPosition.symbol == "SPX"))
    assert held >= 0, f"the account is short {held:g} SPX: place_order output {_step(second, 'place_order')}"


def test_a_failed_exit_does_not_leave_the_position_without_its_stop(app, settings):
    from tradetrail.runtime.build import build_app
    from tradetrail.settings import Settings

    user_id, strategy = demo(app)
    first = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # 2005-01-03: the bracket
    assert _step(first, "place_order")["output"]["status"] == "accepted"
    # The broker now asks "market order, are you sure?" (o10151), which is not on the allow-list.
    asking = build_app(Settings(home=settings.home, database_url=settings.database_url, sim_questions="o10151"),
                       migrate=False)
    second = get_execution(asking, run_strategy(asking, user_id, "demo").execution_id)  # 2005-01-04: SELL
    assert second["failed_step"] == "place_order" and "declined" in second["error"]
    account = demo_account(app, user_id, strategy)
    held = {p.symbol: p.quantity for p in app.broker.positions(account)}
    working_sells = [o for o in app.broker.orders(account) if o.status == "SUBMITTED" and o.side == "SELL"]
    assert held == {"SPX": 16.0}  # the scenario: still long
    assert working_sells, "long 16 SPX at the broker and no working stop or target left for it"
