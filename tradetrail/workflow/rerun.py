"""Replaying an execution from its stored artifacts: the same strategy version, the same bars (read back from
the bars artifact, not the source), the same prompt template versions, and the analyst's cached answer (a
replay never calls a model). It stops at the signal — a replay never trades — and compares what it got with
what the original recorded.
"""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.analyst.cache import CacheOnlyAnalyst, SqlAnswerCache
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.db.models import LineageStep, Strategy, StrategyVersion
from tradetrail.domain.bars import bars_from_json, resample_weekly
from tradetrail.domain.contract import Contract
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.executor import Step
from tradetrail.workflow.steps.analysis import analyze, plugin
from tradetrail.workflow.steps.charts import render_charts
from tradetrail.workflow.steps.indicators import compute_indicators
from tradetrail.workflow.steps.signal import decide_signal

COMPARED_SIGNAL_FIELDS = ("action", "confidence", "entry", "stop_loss", "take_profit")


def _original_steps(ctx: RunContext) -> dict[str, LineageStep]:
    with ctx.app.Session() as s:
        rows = s.scalars(select(LineageStep).where(LineageStep.execution_id == ctx.replay_of)).all()
        s.expunge_all()
    return {r.step_name: r for r in rows}


def load_original(ctx: RunContext) -> StepOutcome:
    ctx.step_input.update(replay_of=ctx.replay_of)
    steps = _original_steps(ctx)
    needed = ("resolve_contract", "fetch_market_data", "analyze", "decide_signal")
    missing = [n for n in needed if n not in steps or steps[n].status != "succeeded"]
    if missing:
        raise StepError(f"execution {ctx.replay_of} has no successful {', '.join(missing)}: a replay needs a run "
                        "that reached its signal")
    with ctx.app.Session() as s:
        strategy = s.get(Strategy, ctx.strategy_id)
        version = s.get(StrategyVersion, ctx.strategy_version_id)
        ctx.strategy_name = strategy.name
        ctx.config = StrategyConfig.model_validate(version.config)
    ctx.contract = Contract(**steps["resolve_contract"].output["contract"])
    digest = steps["fetch_market_data"].artifacts.get("bars_daily")
    if not digest:
        raise StepError("the original run stored no bars artifact")
    data, _ = ctx.app.artifacts.load(digest)
    ctx.bars["daily"] = bars_from_json(data)
    ctx.step_artifacts["bars_daily"] = digest
    if "weekly" in steps["fetch_market_data"].output:
        ctx.bars["weekly"] = resample_weekly(ctx.bars["daily"])
    analysis_input = steps["analyze"].input
    ctx.pinned_templates = {role: (ref["template_id"], ref["version"])
                            for role, ref in analysis_input.get("templates", {}).items()}
    ctx.original = {"analyst": analysis_input.get("analyst"), "model": analysis_input.get("model"),
                    "prompt_hash": analysis_input.get("prompt_hash"),
                    "image_hashes": analysis_input.get("image_hashes", []),
                    "signal": steps["decide_signal"].output,
                    "latest": (steps["compute_indicators"].output or {}).get("latest", {})
                    if "compute_indicators" in steps else {}}
    ctx.choose_analyst = cached_answers_only
    return StepOutcome(output={"replay_of": ctx.replay_of, "strategy": strategy.name, "version": version.version,
                               "as_of": ctx.as_of.isoformat(), "bars": {tf: len(b) for tf, b in ctx.bars.items()},
                               "templates": {k: list(v) for k, v in ctx.pinned_templates.items()}})


def cached_answers_only(ctx: RunContext):
    """The analyst the original run used, whatever the settings say today: the rules, the plug-in, or the
    model's answer from the cache — a re-run costs nothing and never reaches a model."""
    cfg = ctx.config.analyst
    if ctx.original.get("analyst") == "rules":
        return RulesAnalyst(cfg.atr_stop_multiple, cfg.reward_risk)
    if cfg.kind == "plugin" and ctx.original.get("analyst") != "llm":  # computed again, as the rules are
        return plugin(ctx)
    if not ctx.charts:
        raise StepError("the model analyst needs the chart images, but charts are disabled in the strategy")
    return CacheOnlyAnalyst(SqlAnswerCache(ctx.app.engine), model=ctx.original.get("model")
                            or cfg.model or ctx.app.settings.llm_model)


def compare_with_original(ctx: RunContext) -> StepOutcome:
    """Succeeds either way; ``matches`` says whether the replay reproduced the original decision."""
    original = ctx.original
    replayed = ctx.signal.to_dict()
    differences = []
    for name in COMPARED_SIGNAL_FIELDS:
        if original["signal"].get(name) != replayed.get(name):
            differences.append({"field": f"signal.{name}", "original": original["signal"].get(name),
                                "replay": replayed.get(name)})
    images = [ctx.charts[tf].sha256 for tf in ctx.bars if tf in ctx.charts]
    if original["image_hashes"] and images != original["image_hashes"]:
        differences.append({"field": "charts", "original": original["image_hashes"], "replay": images})
    return StepOutcome(output={"matches": not differences, "differences": differences,
                               "original_signal": {k: original["signal"].get(k) for k in COMPARED_SIGNAL_FIELDS},
                               "replayed_signal": {k: replayed.get(k) for k in COMPARED_SIGNAL_FIELDS}})


REPLAY_STEPS: list[tuple[str, Step]] = [
    ("load_original", load_original),
    ("compute_indicators", compute_indicators),
    ("render_charts", render_charts),
    ("analyze", analyze),
    ("decide_signal", decide_signal),
    ("compare_with_original", compare_with_original),
]
