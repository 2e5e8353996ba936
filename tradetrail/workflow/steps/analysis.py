"""analyze: render the prompts, ask the analyst, validate and record the answer (valid or not).

Which analyst: ``rules`` (deterministic), ``llm`` (the configured OpenAI-compatible model, behind the
answer cache) or ``plugin`` (a class the operator allows, see :mod:`tradetrail.analyst.plugins`; a plug-in not
allowed, not found or given bad params fails this step); ``auto`` picks the model when
``TRADETRAIL_LLM_BASE_URL`` is set. An invalid or missing
answer fails this step; nothing downstream ever sees a made-up one.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import insert

from tradetrail.analyst.plugins import PluginError, plugin_analyst
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.app_context import ConfigurationError
from tradetrail.catalogue.prompt_store import TemplateRef, latest_templates, template_version
from tradetrail.db.models import Analysis
from tradetrail.prompts.templates import PromptTemplateError, render
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.jsonable import dumps, to_jsonable


def prompt_variables(strategy_name: str, description: str, contract, bars: dict, latest: dict,
                     confirmation: dict) -> dict:
    """The variables the prompt templates are rendered with, from what the earlier steps produced (a backtest
    with the model analyst builds them for each session from the same inputs, so its prompts are the live ones)."""
    c = contract
    return dict(strategy=strategy_name, description=description, symbol=c.symbol, name=c.name,
                exchange=c.exchange, currency=c.currency, timeframe="",
                as_of=bars["daily"].index[-1].isoformat(),  # the data's time, not the clock's
                timeframes=list(bars), close=latest["daily"].get("close"), indicators=latest,
                confirmation={tf: conf.to_dict() for tf, conf in confirmation.items()},
                bars={tf: len(b) for tf, b in bars.items()})


def template_roles(names, timeframes) -> dict[str, str]:
    """Which template each role renders: the system prompt and one per timeframe (``analyst.prompts``)."""
    return {"system": names.system} | {tf: getattr(names, tf) for tf in timeframes}


def render_prompts(refs: dict[str, TemplateRef], variables: dict, timeframes) -> tuple[str, dict[str, str]]:
    """The system prompt and the per-timeframe prompts rendered from the templates ``refs``."""
    system = render(refs["system"].body, variables)
    per_tf = {tf: render(refs[tf].body, variables | {"timeframe": tf}) for tf in timeframes}
    return system, per_tf


def prompt_document(system: str, per_tf: dict[str, str]) -> tuple[bytes, str]:
    """The prompts as stored (the ``prompt`` artifact) and their sha256: the prompt hash the answer cache keys on."""
    doc = dumps({"system": system, "timeframes": per_tf}).encode()
    return doc, hashlib.sha256(doc).hexdigest()


def _variables(ctx: RunContext) -> dict:
    return prompt_variables(ctx.strategy_name, ctx.config.description, ctx.contract, ctx.bars, ctx.latest,
                            ctx.confirmation)


def _prompts(ctx: RunContext) -> tuple[str, dict[str, str], dict[str, TemplateRef]]:
    variables = _variables(ctx)
    with ctx.app.Session() as s:
        if ctx.pinned_templates:  # a replay renders exactly the versions the original run used
            refs = {role: template_version(s, *ctx.pinned_templates[role]) for role in ("system", *ctx.bars)}
        else:
            roles = template_roles(ctx.config.analyst.prompts, ctx.bars)
            found = latest_templates(s, list(roles.values()), user_id=ctx.user_id)
            refs = {role: found[name] for role, name in roles.items()}
    system, per_tf = render_prompts(refs, variables, ctx.bars)
    return system, per_tf, refs


def _choose(ctx: RunContext):
    if ctx.choose_analyst is not None:  # the run's harness decides (a re-run: cached answers only)
        return ctx.choose_analyst(ctx)
    cfg = ctx.config.analyst
    kind = cfg.kind
    if kind == "auto":
        kind = "llm" if ctx.app.settings.llm_configured else "rules"
    if kind == "rules":
        return RulesAnalyst(cfg.atr_stop_multiple, cfg.reward_risk)
    if kind == "plugin":
        return plugin(ctx)
    if not ctx.charts:
        raise StepError("the model analyst needs the chart images, but charts are disabled in the strategy")
    try:
        return ctx.app.llm_analyst(cfg.model)
    except ConfigurationError as exc:
        raise StepError(str(exc)) from exc


def plugin(ctx: RunContext):
    """The strategy's plug-in analyst, checked against the allowed modules before anything is imported."""
    cfg = ctx.config.analyst
    try:
        return plugin_analyst(cfg.plugin, cfg.params, ctx.app.settings.analyst_plugins)
    except PluginError as exc:
        raise StepError(f"analyst plug-in: {exc}") from exc


_INSERT = insert(Analysis.__table__)


def _record(ctx: RunContext, request: AnalysisRequest, refs: dict, prompt_sha: str, analyst_name: str,
            model: str | None, result: AnalysisResult | None, error: AnalysisFailed | None) -> None:
    row = dict(execution_id=ctx.execution_id, analyst=analyst_name, model=model, prompt_hash=request.prompt_hash,
               prompt_artifact=prompt_sha, templates={k: r.ref() for k, r in refs.items()},
               image_hashes=[i.sha256 for i in request.images], valid=result is not None, answer=None, error=None,
               prompt_tokens=None, completion_tokens=None, latency_ms=None, cached=False)
    if result is not None:
        row.update(answer=result.answer.model_dump(mode="json"), prompt_tokens=result.prompt_tokens,
                   completion_tokens=result.completion_tokens, latency_ms=result.latency_ms, attempts=result.attempts,
                   cached=result.cached)
    else:
        row.update(error=str(error), attempts=int(error.details.get("attempts", 1)))
    with ctx.app.engine.begin() as conn:  # a plain insert: the row is not read back
        conn.execute(_INSERT, row)


def analyze(ctx: RunContext) -> StepOutcome:
    try:
        system, per_tf, refs = _prompts(ctx)
    except PromptTemplateError as exc:
        raise StepError(f"prompt: {exc}") from exc
    prompt_doc, prompt_hash = prompt_document(system, per_tf)
    prompt_sha = ctx.save_artifact("prompt", prompt_doc, "application/json")
    analyst = _choose(ctx)
    model = getattr(analyst, "model", None)
    images = [ctx.charts[tf] for tf in ctx.bars if tf in ctx.charts]
    request = AnalysisRequest(symbol=ctx.contract.symbol, as_of=ctx.as_of.isoformat(), system_prompt=system,
                              timeframe_prompts=per_tf, images=images,
                              indicators={tf: dict(v) for tf, v in ctx.latest.items()},
                              confirmation={tf: c.to_dict() for tf, c in ctx.confirmation.items()},
                              prompt_hash=prompt_hash,
                              # copies: an analyst (a plug-in) must not change what the steps after it read,
                              # such as the close a market entry is sized at
                              bars={tf: b.copy() for tf, b in ctx.bars.items()})
    ctx.step_input.update(analyst=analyst.name if analyst.name != "cache" else "llm", model=model,
                          prompt_hash=prompt_hash, templates={k: r.ref() for k, r in refs.items()},
                          image_hashes=[i.sha256 for i in images])
    try:
        result = analyst.analyze(request)
    except AnalysisFailed as exc:
        _record(ctx, request, refs, prompt_sha, getattr(analyst, "inner", analyst).name, model, None, exc)
        raise StepError(f"analysis failed: {exc}", output={"details": to_jsonable(exc.details)}) from exc
    _record(ctx, request, refs, prompt_sha, result.analyst, result.model, result, None)
    if result.raw:
        ctx.save_artifact("answer", result.raw.encode(), "application/json")
    ctx.analysis = result
    ctx.step_meta.update(tokens={"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                         latency_ms=result.latency_ms, attempts=result.attempts, cached=result.cached)
    label = result.extra.get("label") or f"model {result.model}"
    return StepOutcome(output={"analyst": result.analyst, "label": label, "model": result.model,
                               "cached": result.cached, "answer": result.answer.model_dump(mode="json")})
