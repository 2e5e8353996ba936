"""What one execution carries from step to step, and the outcome type steps return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from tradetrail.analyst.port import AnalysisResult, Analyst, ChartImage
    from tradetrail.app_context import App
    from tradetrail.domain.confirmation import Confirmation
    from tradetrail.domain.contract import Contract
    from tradetrail.domain.risk import EntryPrice, RiskDecision
    from tradetrail.domain.signal_policy import SignalDecision
    from tradetrail.schemas.strategy import StrategyConfig


class StepError(Exception):
    """A step failed for a reason a trader should read. ``output`` and ``meta`` are recorded with it."""

    def __init__(self, message: str, *, output: dict | None = None, meta: dict | None = None):
        super().__init__(message)
        self.output = output or {}
        self.meta = meta or {}


@dataclass
class StepOutcome:
    output: dict[str, Any] = field(default_factory=dict)
    status: str = "succeeded"  # succeeded | skipped
    halt: bool = False  # with status "skipped": the run ends here, as skipped


@dataclass
class RunContext:
    """State of one execution. Steps read what earlier steps left here and record what they consumed in
    ``step_input`` / ``step_meta`` / ``step_artifacts`` (reset by the executor before every step, and
    recorded even when the step fails)."""

    app: App
    execution_id: str
    user_id: int
    strategy_id: int
    strategy_version_id: int
    as_of: datetime
    trigger: str = "manual"

    step_input: dict[str, Any] = field(default_factory=dict)
    step_meta: dict[str, Any] = field(default_factory=dict)
    step_artifacts: dict[str, str] = field(default_factory=dict)

    strategy_name: str = ""
    config: StrategyConfig | None = None
    contract: Contract | None = None
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    indicators: dict[str, pd.DataFrame] = field(default_factory=dict)
    latest: dict[str, dict[str, float | None]] = field(default_factory=dict)
    confirmation: dict[str, Confirmation] = field(default_factory=dict)
    charts: dict[str, ChartImage] = field(default_factory=dict)
    analysis: AnalysisResult | None = None
    signal: SignalDecision | None = None
    risk: RiskDecision | None = None
    account: str | None = None
    paper: bool | None = None  # the account's kind as risk_check read it (an account never changes kind)
    # What risk_check passes to place_order, and place_order to track_order:
    levels: dict[str, float | None] = field(default_factory=dict)  # entry, stop_loss, take_profit on the tick
    entry_price: EntryPrice | None = None  # what a BUY will trade at (sizing uses it)
    sent: list[str] = field(default_factory=list)  # client order ids this run sent
    started_perf: float = 0.0  # perf_counter() at the start of the run, set by the executor
    # Replay of an earlier execution: its id, the exact prompt versions it used ({role: (template id, version)})
    # and its recorded outputs to compare with; a replay never asks a model, it reads the answer cache.
    replay_of: str | None = None
    pinned_templates: dict[str, tuple[int, int]] = field(default_factory=dict)
    original: dict[str, Any] = field(default_factory=dict)
    # Which analyst ``analyze`` asks, when the harness running the steps decides instead of the strategy's
    # configuration (the re-run harness: the original's analyst, answering from the cache only).
    choose_analyst: Callable[[RunContext], Analyst] | None = None

    def save_artifact(self, name: str, data: bytes, content_type: str) -> str:
        """Store ``data`` content-addressed and list it under ``name`` on the current step's lineage row."""
        digest = self.app.artifacts.save(data, content_type)
        self.step_artifacts[name] = digest
        return digest
