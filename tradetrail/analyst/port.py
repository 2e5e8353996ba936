"""Analyst port: turns what the pipeline saw (indicators, charts, prompts) into a validated answer.

Adapters: ``rules`` (deterministic, the default), ``openai_compat`` (any OpenAI-compatible vision model),
``cache`` (wraps another analyst, keyed by model, prompt hash and image hashes) and plug-ins the operator
allows. An adapter either returns an :class:`AnalysisResult` whose ``answer`` is a valid
:class:`AnalystAnswer`, or raises :class:`AnalysisFailed`: there is no third outcome and no made-up answer.

An analyst may also answer for a whole series at once (:class:`SeriesAnalyst`, used by backtests): the
actions of every session in one vectorised pass, and the full answer of a session only where the backtest
needs it. It must agree with its per-session :meth:`Analyst.analyze` session by session; without it the
backtest asks :meth:`Analyst.analyze` session by session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from tradetrail.analyst.schema import AnalystAnswer


class AnalysisFailed(Exception):
    """The analyst could not produce a valid answer. ``details`` goes into lineage (attempts, raw answer)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


@dataclass(frozen=True)
class ChartImage:
    """One rendered chart: which timeframe, its PNG bytes and their sha256 (the artifact hash)."""

    timeframe: str
    png: bytes
    sha256: str


@dataclass(frozen=True)
class AnalysisRequest:
    """Everything an analyst may look at for one decision.

    ``system_prompt`` and ``timeframe_prompts`` are already rendered from the strategy's templates;
    ``indicators`` holds the latest values per timeframe and ``confirmation`` the 3-of-4 vote per timeframe.
    """

    symbol: str
    as_of: str
    system_prompt: str
    timeframe_prompts: dict[str, str]
    images: list[ChartImage]
    indicators: dict[str, dict[str, float | None]]
    confirmation: dict[str, dict[str, Any]]
    prompt_hash: str
    # The bars up to the decision's session per timeframe (oldest first; the last row is the session decided
    # on), for analysts that compute their own rules (plug-ins). Never a bar after it.
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class AnalysisResult:
    """A valid answer plus what produced it (for lineage and the analyses table)."""

    answer: AnalystAnswer
    analyst: str  # "rules" | "openai_compat"
    model: str | None = None
    raw: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    attempts: int = 1
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisSeries:
    """A whole daily series for :meth:`SeriesAnalyst.analyze_series`: the bars, the configured indicators
    computed once over them (causal: row t uses bars up to t only), and the per-session request of row t
    exactly as a live run on that session would build it (``request(t)``)."""

    symbol: str
    bars: pd.DataFrame
    indicators: pd.DataFrame
    request: Callable[[int], AnalysisRequest]
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # the indicators as float arrays, by name


@dataclass(frozen=True)
class SeriesAnswers:
    """Per row of the series: the action ("BUY", "SELL", "HOLD"; "" where the analyst cannot decide yet),
    and ``result(t)``, the full answer of row t, asked only for the rows a backtest acts on. ``result(t)``
    must equal ``analyze(series.request(t))``."""

    actions: np.ndarray
    result: Callable[[int], AnalysisResult]


class Analyst(Protocol):
    """What every analyst adapter implements."""

    name: str

    def analyze(self, request: AnalysisRequest) -> AnalysisResult: ...


@runtime_checkable
class SeriesAnalyst(Protocol):
    """An analyst that can also answer a whole series at once (optional; see the module docstring)."""

    name: str

    def analyze(self, request: AnalysisRequest) -> AnalysisResult: ...

    def analyze_series(self, series: AnalysisSeries) -> SeriesAnswers: ...

    def bars_needed(self) -> int:
        """Daily bars this analyst needs before it can decide (the session of the decision included)."""
        ...
