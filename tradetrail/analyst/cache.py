"""The ``cache`` analyst: answers keyed by (model, prompt hash, image hashes), so a replay or a rerun of the
same inputs costs nothing. Only valid answers are cached; a failure is never remembered as an answer.

The prompt hash covers the rendered templates only, not the schema text the model analyst appends to the
system prompt when a server will not take ``response_format: json_schema``; so an answer asked in another
mode (a different prompt) is keyed with its mode, and the json_schema key is the one it always was. A live
run reuses only answers of the mode it would ask in; a replay or a cached backtest, which never asks, takes
the answer of any mode (json_schema first) and its label says which."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Engine, bindparam, select

from tradetrail.analyst import response_format as rf
from tradetrail.analyst.port import AnalysisRequest, AnalysisResult, Analyst
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.db.models import AnalysisCacheEntry
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore


def cache_key(model: str, prompt_hash: str, image_hashes: list[str], mode: str = rf.JSON_SCHEMA) -> str:
    """The answer's key; ``mode`` (how JSON was asked, see the module docstring) only enters it when it
    changed the prompt, so json_schema answers keep their keys."""
    parts = [model, prompt_hash, *image_hashes] + ([] if mode == rf.JSON_SCHEMA else [f"response_format={mode}"])
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _keys(model: str, request: AnalysisRequest) -> dict[str, str]:
    """{mode: key} for every mode, json_schema first."""
    images = [i.sha256 for i in request.images]
    return {mode: cache_key(model, request.prompt_hash, images, mode) for mode in rf.MODES}


_TABLE = AnalysisCacheEntry.__table__
_GET = select(_TABLE).where(_TABLE.c.key == bindparam("key"))
_GET_ANY = select(_TABLE).where(_TABLE.c.key.in_(bindparam("keys", expanding=True)))


class SqlAnswerCache:
    """Cached answers in the ``analysis_cache`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, key: str) -> AnalysisCacheEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"key": key}).first()
        return row

    def first(self, keys: list[str]) -> AnalysisCacheEntry | None:
        """The entry of the first of ``keys`` that has one (one query)."""
        with self.engine.connect() as conn:
            rows = {row.key: row for row in conn.execute(_GET_ANY, {"keys": keys})}
        return next((rows[k] for k in keys if k in rows), None)

    def put(self, key: str, model: str, request: AnalysisRequest, result: AnalysisResult) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, AnalysisCacheEntry.__table__, dict(
                key=key, model=model, prompt_hash=request.prompt_hash,
                image_hashes=[i.sha256 for i in request.images], answer=result.answer.model_dump(mode="json"),
                raw=result.raw, prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                created_at=utcnow()), key=["key"])


class CachingAnalyst:
    name = "cache"

    def __init__(self, inner: Analyst, cache: SqlAnswerCache, model: str):
        self.inner, self.cache, self.model = inner, cache, model

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        planned = getattr(self.inner, "planned_mode", None)
        mode = planned() if planned is not None else rf.JSON_SCHEMA  # the mode the model would be asked in
        keys = _keys(self.model, request)
        t0 = time.perf_counter()
        row = self.cache.get(keys[mode])
        if row is not None:
            return AnalysisResult(answer=AnalystAnswer.model_validate(row.answer), analyst=self.inner.name,
                                  model=self.model, raw=row.raw, prompt_tokens=row.prompt_tokens,
                                  completion_tokens=row.completion_tokens, attempts=0, cached=True,
                                  latency_ms=(time.perf_counter() - t0) * 1000,
                                  extra=_hit_extra(keys[mode], self.model, mode, planned is not None))
        result = self.inner.analyze(request)
        used = result.extra.get("response_format", rf.JSON_SCHEMA)  # a fallback asks in another mode
        key = keys.get(used, keys[rf.JSON_SCHEMA])
        self.cache.put(key, self.model, request, result)
        result.extra["cache_key"] = key
        return result


def _hit_extra(key: str, model: str, mode: str, modal: bool) -> dict:
    """A cache hit's ``extra``: its key and, for a model's answer, the mode it was asked in and the label."""
    if not modal:
        return {"cache_key": key}
    return {"cache_key": key, "response_format": mode, "label": rf.label(model, mode, cached=True)}


class CacheOnlyAnalyst:
    """For replays: the cached answer to exactly these inputs, or a failure — never a model call."""

    name = "cache"

    def __init__(self, cache: SqlAnswerCache, model: str):
        self.cache, self.model = cache, model

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        from tradetrail.analyst.port import AnalysisFailed

        keys = _keys(self.model, request)
        row = self.cache.first(list(keys.values()))
        if row is None:
            raise AnalysisFailed("replay: no cached answer for these exact prompts and charts (they differ from "
                                 "the original run's, or its answer was invalid); a replay never asks the model",
                                 details={"cache_key": keys[rf.JSON_SCHEMA], "attempts": 0})
        mode = next(m for m, k in keys.items() if k == row.key)
        return AnalysisResult(answer=AnalystAnswer.model_validate(row.answer), analyst="llm", model=self.model,
                              raw=row.raw, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                              attempts=0, cached=True, latency_ms=0.0,
                              extra=_hit_extra(row.key, self.model, mode, True))
