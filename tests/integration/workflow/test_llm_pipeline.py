"""The analyze step against a real HTTP server that speaks the OpenAI chat-completions protocol."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from sqlalchemy import select

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.helpers import demo
from tradetrail.catalogue import replay_clock as replay
from tradetrail.db.models import Analysis, LineageStep, Signal
from tradetrail.runtime.build import build_app
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.settings import Settings

KEY = "sk-planted-secret-0123456789"
# The demo's first session (2005-01-03) closes at 1202.08 with a BULLISH daily confirmation.
GOOD_BUY = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 1202.0, "stop_loss": 1170.0,
            "take_profit": 1270.0, "key_factors": ["above SMA200", "SuperTrend up"],
            "reasoning": "Uptrend on both timeframes."}


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_app(settings, fake):
    configured = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                          llm_api_key=KEY, llm_model="fake-vision", llm_timeout_s=2.0, llm_backoff_s=0.01)
    return build_app(configured, migrate=False)


def _run(app):
    user_id, strategy = demo(app)
    return strategy, get_execution(app, run_strategy(app, user_id, "demo").execution_id)


def test_model_receives_both_charts_and_rendered_prompts(llm_app, fake):
    fake.enqueue(Behaviour.ok(GOOD_BUY))
    _, data = _run(llm_app)
    assert data["status"] == "succeeded", data["error"]
    [request] = fake.chat_requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "fake-vision" and body["response_format"]["type"] == "json_schema"
    system, user = body["messages"]
    assert system["role"] == "system" and "disciplined technical analyst" in system["content"]
    texts = [p["text"] for p in user["content"] if p["type"] == "text"]
    images = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
    assert texts[0].startswith("Daily chart of SPX") and texts[1].startswith("Weekly chart of SPX")
    sent = [hashlib.sha256(base64.b64decode(url.split(",", 1)[1])).hexdigest() for url in images]
    charts = data["steps"][5]["artifacts"]
    assert sent == [charts["chart_daily"], charts["chart_weekly"]]
    analyze, decide = data["steps"][6], data["steps"][7]
    assert analyze["output"]["model"] == "fake-vision" and analyze["output"]["answer"]["action"] == "BUY"
    assert analyze["metadata"]["tokens"] == {"prompt": 321, "completion": 42}
    assert decide["output"]["action"] == "BUY" and decide["output"]["reward_risk"] == pytest.approx(2.125)
    with llm_app.Session() as s:
        analysis = s.scalar(select(Analysis))
    assert analysis.valid and analysis.model == "fake-vision" and analysis.image_hashes == sent
    prompt, _ = llm_app.artifacts.load(analysis.prompt_artifact)
    assert json.loads(prompt)["system"] == system["content"]


@pytest.mark.parametrize("behaviour", [
    Behaviour.raw("BUY! definitely buy"),
    Behaviour.raw(json.dumps({**GOOD_BUY, "confidence": "high"})),
    Behaviour.raw(json.dumps({**GOOD_BUY, "stop_loss": 1300.0})),
    Behaviour.raw(json.dumps({k: v for k, v in GOOD_BUY.items() if k != "reasoning"})),
    Behaviour.raw(None),
    Behaviour.refused(),
], ids=["prose", "wrong-type", "stop-above-entry", "missing-field", "null", "refusal"])
def test_malformed_answer_fails_analyze_and_never_becomes_a_signal(llm_app, fake, behaviour):
    fake.enqueue(behaviour)
    _, data = _run(llm_app)
    assert data["status"] == "failed" and data["failed_step"] == "analyze"
    assert [s["name"] for s in data["steps"]][-1] == "analyze"
    assert len(fake.chat_requests) == 1
    with llm_app.Session() as s:
        assert s.scalar(select(Signal)) is None
        analysis = s.scalar(select(Analysis))
    assert analysis.valid is False and analysis.answer is None and analysis.error


def test_server_errors_are_retried_three_times_then_fail(llm_app, fake):
    fake.enqueue(Behaviour.error(500), Behaviour.error(503), Behaviour.error(500), Behaviour.ok(GOOD_BUY))
    _, data = _run(llm_app)
    assert data["failed_step"] == "analyze" and len(fake.chat_requests) == 3


def test_replay_of_the_same_session_is_answered_from_the_cache(llm_app, fake):
    fake.enqueue(Behaviour.ok(GOOD_BUY))
    strategy, first = _run(llm_app)
    with llm_app.Session() as s:
        replay.reset(s, strategy.id)
    second = get_execution(llm_app, run_strategy(llm_app, strategy.user_id, "demo").execution_id)
    assert second["status"] == "succeeded"
    assert len(fake.chat_requests) == 1
    assert second["steps"][6]["output"]["cached"] is True
    assert second["steps"][6]["output"]["answer"] == first["steps"][6]["output"]["answer"]


def test_api_key_never_reaches_lineage(llm_app, fake):
    fake.enqueue(Behaviour.error(401, message=f"bad key {KEY}", echo_key=True))
    _, data = _run(llm_app)
    assert data["failed_step"] == "analyze"
    with llm_app.Session() as s:
        rows = s.scalars(select(LineageStep)).all()
        analyses = s.scalars(select(Analysis)).all()
    dumped = json.dumps([[r.input, r.output, r.meta, r.error, r.traceback] for r in rows], default=str)
    dumped += json.dumps([[a.error] for a in analyses])
    assert KEY not in dumped and "***" in dumped
