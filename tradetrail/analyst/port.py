"""Analyst port: turns what the pipeline saw (indicators, charts, prompts) into a validated answer.

Adapters: ``rules`` (deterministic, the default), ``openai_compat`` (any OpenAI-compatible vision model) and
``cache`` (wraps another analyst, keyed by model, prompt hash and image hashes). An adapter either returns
an :class:`AnalysisResult` whose ``answer`` is a valid :class:`AnalystAnswer`, or raises
:class:`AnalysisFailed`: there is no third outcome and no made-up answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

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


class Analyst(Protocol):
    """What every analyst adapter implements."""

    name: str

    def analyze(self, request: AnalysisRequest) -> AnalysisResult: ...
