"""Backtests with the model analyst: each tested session's request is the one a live run on that session builds
(the bars it fetches — the last ``market_data.lookback_days`` up to the session —, their indicators, charts and
prompts, through the live steps' own functions), so an answer cached by a live run or a replay is found by a
backtest and one cached by a backtest is found by them: the key is (model, prompt hash, image hashes).

Two modes. ``cached`` (the default) answers from the cache only: a session without a cached answer is HOLD
and reported (count and dates), never guessed, and nothing reaches a model. ``model`` first builds every
session's request and counts those without a cached answer — each one model call —, says so (``on_plan``),
refuses before asking anything when that is more than ``max_calls``, and otherwise asks the model for them
through the caching analyst, so every valid answer is cached and a rerun costs nothing. A session whose answer
fails (invalid, refused, the server down) is HOLD with the reason and reported — a live run would fail its
``analyze`` step there —, never answered by another analyst.

Rendering a session's charts costs ~110 ms each (see docs/backtest.md for a year of the demo); a request is
built, looked up and dropped session by session, so memory does not grow with the range (a session asked of the
model is built again for the call rather than kept).
"""

from __future__ import annotations

import hashlib
import time as time_
from collections.abc import Callable
from typing import Any

import numpy as np

from tradetrail.analyst.cache import CacheOnlyAnalyst, SqlAnswerCache
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult, Analyst, ChartImage, SeriesAnswers
from tradetrail.backtest.engine import BacktestError, Progress
from tradetrail.backtest.series import Series
from tradetrail.catalogue.prompt_store import latest_templates
from tradetrail.charts.cache import ChartCache
from tradetrail.domain.bars import resample_weekly
from tradetrail.domain.confirmation import confirm
from tradetrail.domain.indicators import compute_indicators, latest_values
from tradetrail.prompts.templates import PromptTemplateError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.workflow.steps.analysis import prompt_document, prompt_variables, render_prompts, template_roles
from tradetrail.workflow.steps.charts import draw_chart

MODES = ("cached", "model")
DEFAULT_MAX_CALLS = 100
MAX_CALLS_LIMIT = 2000  # ~8 years of sessions; each call a few seconds and a few thousand tokens
DATES_SHOWN = 50  # missing dates and failed sessions listed in the report (the counts are complete)
FAILURES_IN_A_ROW = 5  # consecutive failed model calls after which the rest are not asked (a server down)


class LiveRequests:
    """Builds the analysis request of a backtest's session exactly as a live run on that session does."""

    def __init__(self, app, user_id: int, strategy_name: str, config: StrategyConfig, contract):
        self.config, self.contract, self.strategy_name = config, contract, strategy_name
        timeframes = ["daily"] + (["weekly"] if config.market_data.confirmation_timeframe == "weekly" else [])
        roles = template_roles(config.analyst.prompts, timeframes)
        with app.Session() as s:  # the templates a live run today renders (its user's, else the built-in ones)
            found = latest_templates(s, list(roles.values()), user_id=user_id)
        self.refs = {role: found[name] for role, name in roles.items()}
        self.charts = ChartCache(max_entries=4)  # its own: a backtest must not push the live runs' charts out

    def build(self, series: Series, t: int) -> AnalysisRequest:
        """The request of row ``t``; AnalysisFailed where a live run would fail before asking (too few bars,
        a template that does not render)."""
        cfg = self.config
        md, params = cfg.market_data, cfg.indicators
        daily = series.bars.iloc[max(0, t - md.lookback_days + 1):t + 1]  # what fetch_market_data gets
        need = max(md.min_daily_bars, params.warmup_bars())
        if len(daily) < need:
            raise AnalysisFailed(f"not enough daily bars: need at least {need}, got {len(daily)}")
        bars = {"daily": daily}
        if md.confirmation_timeframe == "weekly":
            weekly = resample_weekly(daily)
            if len(weekly) < params.warmup_bars():
                raise AnalysisFailed(f"not enough weekly bars: need at least {params.warmup_bars()} for the "
                                     f"indicators, got {len(weekly)}")
            bars["weekly"] = weekly
        frames = {tf: compute_indicators(b, params) for tf, b in bars.items()}  # as compute_indicators does
        latest = {tf: latest_values(frames[tf], b) for tf, b in bars.items()}
        confirmation = {tf: confirm(v) for tf, v in latest.items()}
        images = []
        for tf, b in bars.items():
            png = draw_chart(self.contract.symbol, tf, b, frames[tf], cfg.charts, self.charts).png
            images.append(ChartImage(timeframe=tf, png=png, sha256=hashlib.sha256(png).hexdigest()))
        variables = prompt_variables(self.strategy_name, cfg.description, self.contract, bars, latest, confirmation)
        try:
            system, per_tf = render_prompts(self.refs, variables, bars)
        except PromptTemplateError as exc:
            raise AnalysisFailed(f"prompt: {exc}") from exc
        _, prompt_hash = prompt_document(system, per_tf)
        return AnalysisRequest(symbol=self.contract.symbol, as_of=daily.index[-1].isoformat(), system_prompt=system,
                               timeframe_prompts=per_tf, images=images,
                               indicators={tf: dict(v) for tf, v in latest.items()},
                               confirmation={tf: c.to_dict() for tf, c in confirmation.items()},
                               prompt_hash=prompt_hash, bars={tf: b.copy() for tf, b in bars.items()})


class ModelBacktestAnalyst:
    """The model analyst of one backtest: answers the tested sessions from what :meth:`prepare` found in the
    cache or got from the model before the loop (a :class:`SeriesAnalyst` to the engine, so it is never asked
    about the bars before the range or the warm-up)."""

    name = "llm"

    def __init__(self, requests: LiveRequests, cache: SqlAnswerCache, model: str, *, mode: str = "cached",
                 max_calls: int = DEFAULT_MAX_CALLS, asker: Callable[[], Analyst] | None = None,
                 on_plan: Callable[[dict], None] | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.requests, self.model, self.mode, self.max_calls = requests, model, mode, max_calls
        self.cached_only = CacheOnlyAnalyst(cache, model)
        self.asker, self.on_plan = asker, on_plan
        self.results: dict[int, AnalysisResult] = {}
        self.missing: list[int] = []
        self.failed: dict[int, str] = {}
        self.asked = self.calls = self.attempts = 0
        self.seconds = {"requests": 0.0, "model": 0.0}

    def bars_needed(self) -> int:
        return 1

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        return self.cached_only.analyze(request)

    # -- before the loop ---------------------------------------------------------------------------------
    def prepare(self, series: Series, rows: range, progress: Progress | None = None) -> None:
        """Build the request of every row in ``rows``, take the cached answers, count the rest; in model mode
        ask the model for them (refused, with nothing asked, when they are more than ``max_calls``)."""
        self.asked = len(rows)
        uncached: list[int] = []
        started = time_.perf_counter()
        for i, t in enumerate(rows):
            if progress is not None:
                progress(i, len(rows))
            try:
                request = self.requests.build(series, t)
            except AnalysisFailed as exc:
                self.failed[t] = str(exc)
                continue
            try:
                self.results[t] = self.cached_only.analyze(request)
            except AnalysisFailed:  # no answer cached under this session's key
                uncached.append(t)
        self.seconds["requests"] = time_.perf_counter() - started
        if self.on_plan is not None:
            self.on_plan(self.plan(len(uncached)))
        if self.mode == "cached":
            self.missing = uncached
            return
        if len(uncached) > self.max_calls:
            raise BacktestError(f"{len(uncached)} of the {self.asked} sessions have no cached answer and would each "
                                f"be a model call, more than max_calls {self.max_calls}: nothing was asked (allow "
                                f"more calls, up to {MAX_CALLS_LIMIT}, or test a shorter range)")
        self._ask(series, uncached, progress)

    def plan(self, uncached: int) -> dict:
        """What the backtest is about to do: sessions asked, found in the cache, and model calls to make."""
        return {"mode": self.mode, "model": self.model, "asked": self.asked, "cached": len(self.results),
                "without_answer": uncached, "calls": uncached if self.mode == "model" else 0,
                "max_calls": self.max_calls if self.mode == "model" else None}

    def _ask(self, series: Series, rows: list[int], progress: Progress | None) -> None:
        analyst = self.asker()
        started = time_.perf_counter()
        in_a_row = 0
        for i, t in enumerate(rows):
            if progress is not None:
                progress(i, len(rows))
            if in_a_row >= FAILURES_IN_A_ROW:
                self.failed[t] = (f"not asked: the model failed {FAILURES_IN_A_ROW} times in a row before this "
                                  "session")
                continue
            request = self.requests.build(series, t)  # built again (it was buildable above): not kept meanwhile
            self.calls += 1
            try:
                result = analyst.analyze(request)  # the caching analyst: a valid answer is cached
            except AnalysisFailed as exc:
                self.attempts += int(exc.details.get("attempts", 1))
                self.failed[t] = f"analysis failed: {exc}"
                in_a_row += 1
                continue
            self.attempts += result.attempts
            in_a_row = 0
            self.results[t] = result
        self.seconds["model"] = time_.perf_counter() - started

    # -- the engine's view -------------------------------------------------------------------------------
    def analyze_series(self, series) -> SeriesAnswers:
        actions = np.full(len(series.bars), "", dtype=object)
        for t, result in self.results.items():
            actions[t] = result.answer.action
        return SeriesAnswers(actions=actions.astype(str), result=self._result)

    def _result(self, t: int) -> AnalysisResult:
        if t in self.results:
            return self.results[t]
        raise AnalysisFailed(self.failed.get(t) or "no cached answer for this session (a backtest in cached mode "
                             "never asks the model)")

    def report(self, series: Series) -> dict[str, Any]:
        """The report's ``analysis``: what was asked, found, missing, failed and called."""
        day = series.day
        failed = sorted(self.failed.items())
        return {"mode": self.mode, "model": self.model, "asked": self.asked,
                "cached": sum(r.cached for r in self.results.values()),
                "answered_by_model": sum(not r.cached for r in self.results.values()),
                "missing": len(self.missing), "missing_dates": [day(t) for t in self.missing[:DATES_SHOWN]],
                "failed": len(failed),
                "failed_sessions": [{"date": day(t), "reason": reason} for t, reason in failed[:DATES_SHOWN]],
                "calls": self.calls, "attempts": self.attempts,
                "max_calls": self.max_calls if self.mode == "model" else None,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
