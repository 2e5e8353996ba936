"""Real runs of the demo strategy with the model analyst against fake servers that refuse json_schema (and
json_object): the run succeeds, its lineage says which response_format was used, and the answer cache keeps
answers of a mode whose prompt differs apart from json_schema answers while replays still find them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.fakes.openai_server import NO_JSON_MODES, ONLY_JSON_OBJECT, Behaviour, FakeOpenAIServer
from tests.integration.analyst.test_openai_analyst import _chart
from tests.support.llm_runs import llm_app, llm_strategy, run, step
from tradetrail.analyst import response_format as rf
from tradetrail.analyst.cache import CacheOnlyAnalyst, CachingAnalyst, SqlAnswerCache, cache_key
from tradetrail.analyst.openai_compat import OpenAICompatAnalyst, answer_json_schema
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest
from tradetrail.catalogue import replay_clock as replay
from tradetrail.db.models import Analysis, AnalysisCacheEntry, Strategy
from tradetrail.services.runs.executions import replay_execution

# The demo's first session (2005-01-03) closes at 1202.08 with a BULLISH daily confirmation.
GOOD_BUY = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 1202.0, "stop_loss": 1170.0,
            "take_profit": 1270.0, "key_factors": ["above SMA200"], "reasoning": "Uptrend on both timeframes."}
SCHEMA_LINE = json.dumps(answer_json_schema(), sort_keys=True, separators=(",", ":"))


def _formats(srv: FakeOpenAIServer) -> list[str]:
    return [(r.body.get("response_format") or {"type": "none"})["type"] for r in srv.chat_requests]


@pytest.mark.parametrize(("accepts", "mode", "sent"), [
    (("json_schema",), "json_schema", ["json_schema"]),
    (ONLY_JSON_OBJECT, "json_object", ["json_schema", "json_object"]),
    (NO_JSON_MODES, "prompt", ["json_schema", "json_object", "none"]),
], ids=["json_schema", "json_object", "prompt"])
def test_a_run_succeeds_in_the_mode_the_server_takes_and_its_lineage_says_which(settings, accepts, mode, sent):
    with FakeOpenAIServer(accepts=accepts) as fake:
        app = llm_app(settings, fake)
        uid = llm_strategy(app)
        fake.enqueue(Behaviour.ok(GOOD_BUY))
        execution = run(app, uid)
        assert execution["status"] == "succeeded", execution["error"]
        analyze = step(execution, "analyze")
        assert analyze["output"]["label"] == f"model fake-vision (response_format {mode})"
        assert analyze["output"]["answer"] == GOOD_BUY
        assert step(execution, "decide_signal")["output"]["action"] == "BUY"
        assert _formats(fake) == sent
        sent_system = fake.chat_requests[-1].body["messages"][0]["content"]
        with app.Session() as s:
            analysis = s.scalar(select(Analysis))
            entries = s.scalars(select(AnalysisCacheEntry)).all()
        # The step's prompt hash covers the rendered templates only: the schema appended to the system prompt
        # in the fallback modes does not change it, so the cache key has to carry the mode instead.
        stored = json.loads(app.artifacts.load(analysis.prompt_artifact)[0])
        assert analysis.prompt_hash == analyze["input"]["prompt_hash"]
        if mode == "json_schema":
            assert sent_system == stored["system"]
        else:
            assert sent_system == stored["system"] + "\n\n" + rf.schema_instruction(answer_json_schema())
        [entry] = entries
        images = analyze["input"]["image_hashes"]
        assert entry.key == cache_key("fake-vision", analysis.prompt_hash, images, mode)
        assert (entry.key == cache_key("fake-vision", analysis.prompt_hash, images)) is (mode == "json_schema")

        # the same session again: answered from the cache of that mode, no request at all
        with app.Session() as s:
            replay.reset(s, s.scalar(select(Strategy.id).where(Strategy.name == "llm")))
        again = run(app, uid)
        assert again["status"] == "succeeded", again["error"]
        assert step(again, "analyze")["output"]["cached"] is True
        assert step(again, "analyze")["output"]["label"] == f"model fake-vision (response_format {mode}, cached)"
        assert len(fake.chat_requests) == len(sent)

        # a replay (cached answers only, it never asks) finds the answer whatever mode it was asked in
        replayed = replay_execution(app, uid, execution["id"])
        assert replayed["status"] == "succeeded", replayed["error"]
        assert replayed["steps"][-1]["output"]["matches"] is True
        assert step(replayed, "analyze")["output"]["label"] == f"model fake-vision (response_format {mode}, cached)"
        assert len(fake.chat_requests) == len(sent)


# --- the cache directly: a live call reuses only answers of its own mode ------------------------------------


@pytest.fixture
def request_() -> AnalysisRequest:
    return AnalysisRequest(symbol="SPX", as_of="2005-01-03", system_prompt="Be careful.",
                           timeframe_prompts={"daily": "Daily chart."}, images=[_chart("daily", (1, 2, 3))],
                           indicators={}, confirmation={}, prompt_hash="p" * 64)


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    with FakeOpenAIServer() as strict, FakeOpenAIServer(accepts=ONLY_JSON_OBJECT) as loose:
        yield strict, loose


def _caching(app, srv: FakeOpenAIServer, mode: str = "auto") -> CachingAnalyst:
    inner = OpenAICompatAnalyst(base_url=srv.base_url, api_key=None, model="m", timeout_s=2.0, backoff_s=0.01,
                                response_format=mode)
    return CachingAnalyst(inner, SqlAnswerCache(app.engine), model="m")


def test_a_live_call_never_takes_an_answer_asked_in_another_mode(app, servers, request_):
    strict, loose = servers
    first = _caching(app, loose).analyze(request_)  # falls back: cached under the json_object key
    assert first.extra["response_format"] == "json_object" and not first.cached
    images = [i.sha256 for i in request_.images]
    assert first.extra["cache_key"] == cache_key("m", request_.prompt_hash, images, "json_object")

    again = _caching(app, loose).analyze(request_)  # remembered json_object: its own key, a hit
    assert again.cached and again.extra["response_format"] == "json_object" and len(loose.chat_requests) == 2

    other = _caching(app, strict, "json_schema").analyze(request_)  # another prompt: asked, not taken
    assert not other.cached and len(strict.chat_requests) == 1
    assert other.extra["cache_key"] == cache_key("m", request_.prompt_hash, images)
    with app.Session() as s:
        assert s.query(AnalysisCacheEntry).count() == 2

    # a replay takes json_schema first when both exist, and says which
    found = CacheOnlyAnalyst(SqlAnswerCache(app.engine), "m").analyze(request_)
    assert found.cached and found.extra["response_format"] == "json_schema"


def test_a_replay_finds_a_fallback_answer_and_fails_without_any(app, servers, request_):
    _, loose = servers
    only = CacheOnlyAnalyst(SqlAnswerCache(app.engine), "m")
    with pytest.raises(AnalysisFailed, match="never asks the model"):
        only.analyze(request_)
    _caching(app, loose, "json_object").analyze(request_)
    found = only.analyze(request_)
    assert found.extra["response_format"] == "json_object" and found.answer.action == "BUY"
    assert found.extra["label"] == "model m (response_format json_object, cached)"


def test_the_setting_forces_a_models_mode_in_a_real_run(settings):
    """TRADETRAIL_LLM_RESPONSE_FORMAT reaches the analyst the composition root builds: a forced json_object is
    asked once, without the json_schema refusal first."""
    from tradetrail.runtime.build import build_app
    from tradetrail.settings import Settings

    with FakeOpenAIServer(accepts=ONLY_JSON_OBJECT) as fake:
        forced = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                          llm_api_key="sk-test", llm_model="fake-vision", llm_timeout_s=5.0, llm_backoff_s=0.01,
                          llm_response_format="fake-vision=json_object,*=auto")
        app = build_app(forced, migrate=False)
        uid = llm_strategy(app)
        fake.enqueue(Behaviour.ok(GOOD_BUY))
        execution = run(app, uid)
        assert execution["status"] == "succeeded", execution["error"]
        assert step(execution, "analyze")["output"]["label"] == "model fake-vision (response_format json_object)"
        assert _formats(fake) == ["json_object"]
