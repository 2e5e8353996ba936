"""Replaying an execution from its artifacts reproduces its decision without asking the source or a model."""

from __future__ import annotations

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.runtime.build import build_app
from tradetrail.services.prompts.user_prompts import save_user_prompt
from tradetrail.services.runs.executions import get_execution, replay_execution, run_strategy
from tradetrail.settings import Settings

BUY = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 1202.0, "stop_loss": 1170.0,
       "take_profit": 1270.0, "key_factors": ["trend"], "reasoning": "Uptrend."}


def _last(run: dict) -> dict:
    return run["steps"][-1]


def test_a_rules_run_replays_to_the_same_signal_even_after_the_prompt_changed(app):
    uid, _ = demo(app)
    original = get_execution(app, run_strategy(app, uid, "demo").execution_id)
    save_user_prompt(app, uid, "daily", "A different daily prompt for {{ symbol }}.")  # later edits
    replay = replay_execution(app, uid, original["id"])
    assert replay["status"] == "succeeded", replay["error"]
    assert [s["name"] for s in replay["steps"]] == ["load_original", "compute_indicators", "render_charts",
                                                    "analyze", "decide_signal", "compare_with_original"]
    compare = _last(replay)["output"]
    assert compare["matches"] is True and compare["differences"] == []
    assert compare["replayed_signal"]["action"] == original["steps"][7]["output"]["action"]
    assert replay["as_of"] == original["as_of"]
    analyze = next(s for s in replay["steps"] if s["name"] == "analyze")
    orig_analyze = next(s for s in original["steps"] if s["name"] == "analyze")
    assert analyze["input"]["templates"] == orig_analyze["input"]["templates"]  # the pinned versions
    assert analyze["input"]["prompt_hash"] == orig_analyze["input"]["prompt_hash"]


def test_a_model_run_replays_from_the_answer_cache_without_calling_the_model(settings):
    with FakeOpenAIServer() as fake:
        configured = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                              llm_api_key="sk-test", llm_model="fake-vision", llm_timeout_s=2.0, llm_backoff_s=0.01)
        app = build_app(configured, migrate=False)
        uid, _ = demo(app)
        fake.enqueue(Behaviour.ok(BUY))
        original = get_execution(app, run_strategy(app, uid, "demo").execution_id)
        assert original["status"] == "succeeded", original["error"]
        calls = len(fake.chat_requests)
        replay = replay_execution(app, uid, original["id"])
        assert len(fake.chat_requests) == calls  # no model call
    assert replay["status"] == "succeeded", replay["error"]
    assert _last(replay)["output"]["matches"] is True
    assert next(s for s in replay["steps"] if s["name"] == "analyze")["output"]["cached"] is True


def test_a_model_run_whose_answer_is_not_cached_fails_the_replay_instead_of_asking(settings, app):
    from sqlalchemy import delete

    from tradetrail.db.models import AnalysisCacheEntry

    with FakeOpenAIServer() as fake:
        configured = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                              llm_api_key="sk-test", llm_model="fake-vision", llm_timeout_s=2.0, llm_backoff_s=0.01)
        llm_app = build_app(configured, migrate=False)
        uid, _ = demo(llm_app)
        fake.enqueue(Behaviour.ok(BUY))
        original = run_strategy(llm_app, uid, "demo").execution_id
        with llm_app.engine.begin() as conn:
            conn.execute(delete(AnalysisCacheEntry))
        calls = len(fake.chat_requests)
        replay = replay_execution(llm_app, uid, original)
        assert len(fake.chat_requests) == calls
    assert replay["status"] == "failed" and replay["failed_step"] == "analyze"
    assert "never asks the model" in replay["error"]


def test_replay_over_the_api_and_only_for_the_owner(app):
    uid, _ = demo(app)
    alice = api_user(app, "demo")
    original = run_strategy(app, uid, "demo").execution_id
    r = alice.post(f"/api/lineage/execution/{original}/replay")
    assert r.status_code == 201, r.text
    assert r.json()["steps"][-1]["output"]["matches"] is True and r.json()["trigger"] == "replay"
    bob = api_user(app, "bob", client=alice.client)
    assert bob.post(f"/api/lineage/execution/{original}/replay").status_code == 404


def test_a_run_that_never_reached_its_signal_cannot_be_replayed(app):
    from tradetrail.services.strategies.configs import set_enabled

    uid, _ = demo(app)
    set_enabled(app, uid, "demo", False)
    skipped = run_strategy(app, uid, "demo").execution_id
    replay = replay_execution(app, uid, skipped)
    assert replay["status"] == "failed" and "reached its signal" in replay["error"]


def test_a_running_replay_is_not_marked_interrupted_by_a_run_of_its_strategy(app):
    from tradetrail.db.models import Execution
    from tradetrail.services.runs.executions import mark_interrupted

    uid, strategy = demo(app)
    original = get_execution(app, run_strategy(app, uid, "demo").execution_id)
    with app.Session() as s:  # a replay in flight (replays take no strategy lock)
        s.add(Execution(id="replay-in-flight", user_id=uid, strategy_id=strategy.id,
                        strategy_version_id=original["strategy_version_id"], status="running", trigger="replay",
                        as_of=__import__("datetime").datetime.fromisoformat(original["as_of"])))
        s.commit()
    assert mark_interrupted(app, strategy.id) == 0
    with app.Session() as s:
        assert s.get(Execution, "replay-in-flight").status == "running"
