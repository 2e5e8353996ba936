"""The ordered step list of one execution (see SPEC.md, "The workflow")."""

from __future__ import annotations

from tradetrail.workflow.executor import Step
from tradetrail.workflow.steps.analysis import analyze
from tradetrail.workflow.steps.broker import check_broker
from tradetrail.workflow.steps.charts import render_charts
from tradetrail.workflow.steps.complete import complete
from tradetrail.workflow.steps.contract import resolve_contract
from tradetrail.workflow.steps.indicators import compute_indicators
from tradetrail.workflow.steps.market_data import fetch_market_data
from tradetrail.workflow.steps.signal import decide_signal
from tradetrail.workflow.steps.strategy import load_strategy
from tradetrail.workflow.steps.trading import place_order, risk_check, track_order, update_portfolio

STEPS: list[tuple[str, Step]] = [
    ("load_strategy", load_strategy),
    ("check_broker", check_broker),
    ("resolve_contract", resolve_contract),
    ("fetch_market_data", fetch_market_data),
    ("compute_indicators", compute_indicators),
    ("render_charts", render_charts),
    ("analyze", analyze),
    ("decide_signal", decide_signal),
    ("risk_check", risk_check),
    ("place_order", place_order),
    ("track_order", track_order),
    ("update_portfolio", update_portfolio),
    ("complete", complete),
]
