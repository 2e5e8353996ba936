"""The ``cache`` analyst: answers keyed by (model, prompt hash, image hashes), so a replay or a rerun of the
same inputs costs nothing. Only valid answers are cached; a failure is never remembered as an answer."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Engine, bindparam, select

from tradetrail.analyst.port import AnalysisRequest, AnalysisResult, Analyst
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.db.models import AnalysisCacheEntry
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore


def cache_key(model: str, prompt_hash: str, image_hashes: list[str]) -> str:
    return hashlib.sha256("\n".join([model, prompt_hash, *image_hashes]).encode()).hexdigest()


_GET = select(AnalysisCacheEntry.__table__).where(AnalysisCacheEntry.__table__.c.key == bindparam("key"))


class SqlAnswerCache:
    """Cached answers in the ``analysis_cache`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, key: str) -> AnalysisCacheEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"key": key}).first()
        return row

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
        key = cache_key(self.model, request.prompt_hash, [i.sha256 for i in request.images])
        t0 = time.perf_counter()
        row = self.cache.get(key)
        if row is not None:
            return AnalysisResult(answer=AnalystAnswer.model_validate(row.answer), analyst=self.inner.name,
                                  model=self.model, raw=row.raw, prompt_tokens=row.prompt_tokens,
                                  completion_tokens=row.completion_tokens, attempts=0, cached=True,
                                  latency_ms=(time.perf_counter() - t0) * 1000, extra={"cache_key": key})
        result = self.inner.analyze(request)
        self.cache.put(key, self.model, request, result)
        result.extra["cache_key"] = key
        return result


class CacheOnlyAnalyst:
    """For replays: the cached answer to exactly these inputs, or a failure — never a model call."""

    name = "cache"

    def __init__(self, cache: SqlAnswerCache, model: str):
        self.cache, self.model = cache, model

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        from tradetrail.analyst.port import AnalysisFailed

        key = cache_key(self.model, request.prompt_hash, [i.sha256 for i in request.images])
        row = self.cache.get(key)
        if row is None:
            raise AnalysisFailed("replay: no cached answer for these exact prompts and charts (they differ from "
                                 "the original run's, or its answer was invalid); a replay never asks the model",
                                 details={"cache_key": key, "attempts": 0})
        return AnalysisResult(answer=AnalystAnswer.model_validate(row.answer), analyst="llm", model=self.model,
                              raw=row.raw, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                              attempts=0, cached=True, latency_ms=0.0, extra={"cache_key": key})
