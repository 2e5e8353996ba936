"""A face watching a run (``run_strategy(on_step=...)``, what ``tradetrail run`` shows): each step is handed
over once recorded, in order, and a display that fails does not fail the run."""

from __future__ import annotations

from tests.support.helpers import demo
from tradetrail.services.runs.executions import get_execution, run_strategy


def test_each_recorded_step_is_reported_in_order_and_a_failing_display_changes_nothing(app):
    user_id, _ = demo(app)
    seen = []

    def broken_display(step: dict) -> None:
        seen.append(step)
        raise RuntimeError("the terminal went away")

    summary = run_strategy(app, user_id, "demo", on_step=broken_display)
    recorded = get_execution(app, summary.execution_id)
    assert summary.status == recorded["status"] == "succeeded"
    assert [(s["number"], s["name"], s["status"]) for s in seen] == \
        [(s["number"], s["name"], s["status"]) for s in recorded["steps"]]
    fetched = next(s for s in seen if s["name"] == "fetch_market_data")
    assert fetched["output"]["daily"]["count"] == 1500 and fetched["duration_ms"] > 0
