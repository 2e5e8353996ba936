"""Backtests with the model analyst against the fake OpenAI-compatible server (a real HTTP server): cached
answers only by default (nothing asked, sessions without one reported), ``model`` mode counts the calls first
and refuses past ``max_calls``, caches every valid answer so a rerun asks nothing, shares its cache keys with
live runs both ways, and reports a failed answer instead of guessing one."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.api_client import api_user
from tests.support.cli import tt
from tests.support.llm_runs import llm_app, llm_strategy, run, step
from tests.support.web_http import sign_in, web_client
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.backtest import engine, runner
from tradetrail.backtest.series import Series
from tradetrail.db.backtest_models import Backtest
from tradetrail.db.models import AnalysisCacheEntry
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.backtests.model_analyst import LiveRequests
from tradetrail.services.backtests.running import BacktestRequest, _load, run_backtest
from tradetrail.services.backtests.sessions import rerun_session, trade_sessions
from tradetrail.services.errors import InvalidBacktest
from tradetrail.services.runs.executions import get_execution

pytestmark = pytest.mark.once  # the backtest engine and the model's answers: the same on either backend

START, END = date(2005, 1, 3), date(2005, 1, 31)  # 20 sessions; the rules analyst trades once in them
# The demo market's first session (2005-01-03) closes at 1202.08 with a daily ATR(14) of about 8.89.
GOOD_BUY = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 1202.0, "stop_loss": 1170.0,
            "take_profit": 1270.0, "key_factors": ["above SMA200"], "reasoning": "Uptrend on both timeframes."}
HOLD = {"action": "HOLD", "confidence": 50, "trend": "neutral", "entry": None, "stop_loss": None,
        "take_profit": None, "key_factors": ["no edge"], "reasoning": "Nothing to do."}


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def model_app(settings, fake):
    return llm_app(settings, fake)


@pytest.fixture
def uid(model_app):
    return llm_strategy(model_app)


def _cached_entries(app) -> int:
    with app.Session() as s:
        return s.scalar(select(func.count()).select_from(AnalysisCacheEntry))


def _rules_answers(app, start: date, end: date) -> tuple[list[dict], dict]:
    """Per decided session of ``start``..``end`` the rules analyst's answer as JSON, and the rules backtest's
    report: the model's scripted answers, and what trading on them must give."""
    cfg = demo_config()
    _, _, bars = _load(app, cfg, start, end)
    window, first = runner.tested_rows(bars, start, end, cfg.market_data.lookback_days)
    series = Series(cfg, "SPX", window)
    rules = RulesAnalyst(cfg.analyst.atr_stop_multiple, cfg.analyst.reward_risk)
    ready = max(first, engine.warmup_rows(series, rules))
    answers = [rules.analyze(series.request(t)).answer.model_dump(mode="json") for t in range(ready, len(series))]
    return answers, runner.backtest(cfg, "SPX", bars, start, end, rules, execution_id="rules").report


def test_cached_mode_with_an_empty_cache_reports_every_session_missing_and_asks_nothing(model_app, fake, uid):
    plans = []
    backtest_id, report = run_backtest(model_app, uid, BacktestRequest("llm", START, END), on_plan=plans.append)
    analysis = report["analysis"]
    assert fake.chat_requests == []
    assert analysis["mode"] == "cached" and analysis["asked"] == report["sessions"] == 20
    assert analysis["missing"] == 20 and analysis["cached"] == 0 and analysis["calls"] == 0
    assert analysis["missing_dates"][0] == "2005-01-03" and analysis["missing_dates"][-1] == "2005-01-31"
    assert report["undecided_sessions"] == analysis["missing_dates"]
    assert report["trades"] == [] and report["visited_sessions"] == 0
    assert plans == [{"mode": "cached", "model": "fake-vision", "asked": 20, "cached": 0, "without_answer": 20,
                      "calls": 0, "max_calls": None}]
    with model_app.Session() as s:
        assert s.get(Backtest, backtest_id).params["plan"] == plans[0]


def test_model_mode_with_too_few_calls_allowed_is_refused_before_any_call(model_app, fake, uid):
    plans = []
    with pytest.raises(InvalidBacktest, match="20 of the 20 sessions have no cached answer.*more than max_calls 5: "
                                              "nothing was asked"):
        run_backtest(model_app, uid, BacktestRequest("llm", START, END, analyst="model", max_calls=5),
                     on_plan=plans.append)
    assert fake.chat_requests == [] and _cached_entries(model_app) == 0
    assert plans[0]["calls"] == 20 and plans[0]["max_calls"] == 5
    with model_app.Session() as s:
        row = s.scalar(select(Backtest))
    assert row.status == "failed" and "max_calls 5" in row.error and row.params["plan"]["calls"] == 20


def test_model_mode_asks_the_counted_sessions_trades_on_the_answers_and_a_rerun_asks_nothing(model_app, fake, uid):
    answers, rules_report = _rules_answers(model_app, START, END)
    assert rules_report["trades"], "the range must hold a trade for this test to mean anything"
    fake.enqueue(*(Behaviour.ok(a) for a in answers))
    plans = []
    _, report = run_backtest(model_app, uid, BacktestRequest("llm", START, END, analyst="model", max_calls=20),
                             on_plan=plans.append)
    assert plans[0]["calls"] == len(answers) == 20
    assert len(fake.chat_requests) == 20
    assert report["analysis"] | {"seconds": None} == {
        "mode": "model", "model": "fake-vision", "asked": 20, "cached": 0, "answered_by_model": 20, "missing": 0,
        "missing_dates": [], "failed": 0, "failed_sessions": [], "calls": 20, "attempts": 20, "max_calls": 20,
        "seconds": None}
    # asked session by session in order, each answered with the rules analyst's answer: the same trades
    assert report["trades"] == rules_report["trades"] and report["stats"] == rules_report["stats"]
    assert _cached_entries(model_app) == 20

    _, again = run_backtest(model_app, uid, BacktestRequest("llm", START, END))
    assert len(fake.chat_requests) == 20  # nothing more asked
    assert again["analysis"]["cached"] == 20 and again["analysis"]["missing"] == again["analysis"]["calls"] == 0
    assert again["trades"] == report["trades"] and again["stats"] == report["stats"]


def test_a_live_run_and_a_backtest_share_cache_keys_both_ways(model_app, fake, uid):
    day = date(2005, 1, 3)
    fake.enqueue(Behaviour.ok(GOOD_BUY))
    live = run(model_app, uid)  # the replay clock's first session, 2005-01-03
    assert live["status"] == "succeeded", live["error"]
    analyze = step(live, "analyze")
    # the backtest builds the very request of that session: the same prompt hash and chart hashes
    cfg = demo_config()
    cfg = cfg.model_validate(cfg.to_json() | {"analyst": cfg.to_json()["analyst"] | {"kind": "llm"}})
    _, contract, bars = _load(model_app, cfg, day, day)
    window, first = runner.tested_rows(bars, day, day, cfg.market_data.lookback_days)
    request = LiveRequests(model_app, uid, "llm", cfg, contract).build(Series(cfg, "SPX", window), first)
    assert request.prompt_hash == analyze["input"]["prompt_hash"]
    assert [i.sha256 for i in request.images] == analyze["input"]["image_hashes"]

    # the backtest finds the live run's answer for its first session and asks the model for the second only;
    # the live run on the second session then finds the backtest's answer (a session past the first tested
    # one: its bars are the live window, not the backtest's longer series)
    fake.enqueue(Behaviour.ok(HOLD))
    plans = []
    _, report = run_backtest(model_app, uid, BacktestRequest("llm", day, date(2005, 1, 4), analyst="model",
                                                             max_calls=1), on_plan=plans.append)
    assert plans[0]["cached"] == 1 and plans[0]["calls"] == 1
    assert report["analysis"]["cached"] == 1 and report["analysis"]["answered_by_model"] == 1
    assert len(fake.chat_requests) == 2
    second = run(model_app, uid)
    assert second["status"] == "succeeded", second["error"]
    assert step(second, "analyze")["output"]["cached"] is True and len(fake.chat_requests) == 2


def test_a_failed_answer_is_reported_for_its_session_never_guessed(model_app, fake, uid):
    start, end = date(2005, 1, 3), date(2005, 1, 7)
    fake.enqueue(Behaviour.ok(HOLD), Behaviour.raw("BUY! definitely buy"), *(Behaviour.ok(HOLD) for _ in range(3)))
    _, report = run_backtest(model_app, uid, BacktestRequest("llm", start, end, analyst="model", max_calls=5))
    analysis = report["analysis"]
    assert len(fake.chat_requests) == 5 and analysis["calls"] == 5
    assert analysis["failed"] == 1 and analysis["answered_by_model"] == 4
    [failed] = analysis["failed_sessions"]
    assert failed["date"] == "2005-01-04" and "not valid JSON" in failed["reason"]
    assert report["undecided_sessions"] == ["2005-01-04"] and report["trades"] == []
    assert _cached_entries(model_app) == 4  # a failure is never cached as an answer
    _, again = run_backtest(model_app, uid, BacktestRequest("llm", start, end))
    assert again["analysis"]["missing_dates"] == ["2005-01-04"] and len(fake.chat_requests) == 5


def test_a_server_that_keeps_failing_is_not_asked_for_every_session(model_app, fake, uid):
    fake.enqueue(*(Behaviour.error(400, "bad request") for _ in range(20)))
    _, report = run_backtest(model_app, uid, BacktestRequest("llm", START, END, analyst="model", max_calls=20))
    analysis = report["analysis"]
    assert len(fake.chat_requests) == analysis["calls"] == 5 and analysis["failed"] == 20
    assert analysis["failed_sessions"][5]["reason"].startswith("not asked: the model failed 5 times in a row")
    assert report["trades"] == []


@pytest.mark.parametrize("req, message", [
    (BacktestRequest("llm", START, END, analyst="guess"), "analyst must be one of cached, model"),
    (BacktestRequest("llm", START, END, max_calls=5), "max_calls bounds the model calls"),
    (BacktestRequest("llm", START, END, analyst="model", max_calls=0), "between 1 and 2000"),
    (BacktestRequest("llm", START, END, analyst="model", max_calls=2001), "between 1 and 2000"),
    (BacktestRequest("rules", START, END, analyst="model"), "apply to a strategy whose analyst is the model"),
    (BacktestRequest("rules", START, END, analyst="model", max_calls=3), "apply to a strategy whose analyst is"),
])
def test_bad_analyst_options_are_refused_with_the_reason(model_app, uid, req, message):
    llm_strategy(model_app, {"analyst": {"kind": "rules"}}, name="rules")
    with pytest.raises(InvalidBacktest, match=message):
        run_backtest(model_app, uid, req)


def test_the_model_analyst_without_charts_is_refused_as_a_live_run_fails(settings, fake):
    app = llm_app(settings, fake)
    user_id = llm_strategy(app, {"charts": {"enabled": False}}, name="blind")
    with pytest.raises(InvalidBacktest, match="needs the chart images"):
        run_backtest(app, user_id, BacktestRequest("blind", START, END))


def test_model_mode_without_a_configured_model_is_refused(app):
    user_id = llm_strategy(app)  # TRADETRAIL_LLM_BASE_URL not set: cached answers still work, the model does not
    with pytest.raises(InvalidBacktest, match="TRADETRAIL_LLM_BASE_URL is not set"):
        run_backtest(app, user_id, BacktestRequest("llm", START, START, analyst="model"))
    _, report = run_backtest(app, user_id, BacktestRequest("llm", START, START))
    assert report["analysis"]["missing"] == 1


def test_the_command_line_prints_the_calls_before_making_them_and_the_report_lists_the_sessions(
        model_app, fake, uid, cli_env):
    env = cli_env | {"TRADETRAIL_LLM_BASE_URL": fake.base_url, "TRADETRAIL_LLM_MODEL": "fake-vision",
                     "TRADETRAIL_LLM_API_KEY": "sk-test", "TRADETRAIL_LLM_BACKOFF_S": "0"}
    args = ("backtest", "llm", "--from", "2005-01-03", "--to", "2005-01-05")
    refused = tt(env, *args, "--analyst", "model", "--max-calls", "2", check=False)
    assert refused.returncode != 0 and "3 of the 3 sessions have no cached answer" in refused.stderr
    assert "3 model calls to make (max 2)" in refused.stdout and fake.chat_requests == []

    fake.enqueue(Behaviour.ok(HOLD), Behaviour.raw("not json"), Behaviour.ok(HOLD))
    out = tt(env, *args, "--analyst", "model", "--max-calls", "3").stdout
    assert out.index("3 model calls to make (max 3)") < out.index("buy and hold")
    assert "2 by the model (3 calls, 3 attempts)" in out and "failed 2005-01-04 (HOLD)" in out
    assert len(fake.chat_requests) == 3

    done = tt(env, *args, "--json")  # cached mode by default: the plan on stderr, the JSON alone on stdout
    analysis = json.loads(done.stdout)["report"]["analysis"]
    assert analysis["cached"] == 2 and analysis["missing_dates"] == ["2005-01-04"] and analysis["calls"] == 0
    assert "cached answers only: 2 of 3 sessions cached, 1 without an answer" in done.stderr
    assert len(fake.chat_requests) == 3


def test_the_api_takes_the_mode_and_the_calls_and_shows_the_plan_and_the_analysis(model_app, fake, uid):
    alice = api_user(model_app, "demo")
    body = {"strategy": "llm", "from": "2005-01-03", "to": "2005-01-04"}
    refused = alice.post("/api/backtests", json=body | {"analyst": "model", "max_calls": 1})
    assert refused.status_code == 202
    failed = _wait(alice, refused.json()["id"])
    assert failed["status"] == "failed" and "more than max_calls 1: nothing was asked" in failed["error"]
    assert failed["params"]["plan"]["calls"] == 2 and fake.chat_requests == []

    fake.enqueue(Behaviour.ok(HOLD), Behaviour.ok(HOLD))
    asked = _wait(alice, alice.post("/api/backtests", json=body | {"analyst": "model", "max_calls": 2}).json()["id"])
    assert asked["status"] == "succeeded", asked["error"]
    assert asked["params"]["analyst"] == "model" and asked["params"]["plan"]["calls"] == 2
    assert asked["report"]["analysis"]["answered_by_model"] == 2 and len(fake.chat_requests) == 2
    cached = _wait(alice, alice.post("/api/backtests", json=body).json()["id"])
    assert cached["report"]["analysis"]["cached"] == 2 and cached["params"]["plan"]["calls"] == 0
    assert len(fake.chat_requests) == 2

    for bad in ({"analyst": "guess"}, {"analyst": "model", "max_calls": 0}, {"analyst": "model", "max_calls": 2001},
                {"analyst": "model", "max_calls": "5"}):
        r = alice.post("/api/backtests", json=body | bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    r = alice.post("/api/backtests", json=body | {"max_calls": 5})  # cached mode never calls the model
    assert r.status_code == 422 and "max_calls bounds the model calls" in r.json()["error"]["message"]


def _wait(user, backtest_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = user.get(f"/api/backtests/{backtest_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        assert time.monotonic() < deadline, "backtest did not finish"
        time.sleep(0.1)


def test_the_web_form_takes_the_mode_and_the_page_shows_the_analysis_the_api_reports(model_app, fake, uid):
    alice = api_user(model_app, "demo")  # the demo user with the tests' password
    client = web_client(model_app)
    csrf = sign_in(client)
    form = {"strategy": "llm", "from": "2005-01-03", "to": "2005-01-04", "csrf_token": csrf}
    for bad, field, words in (({"analyst": "model", "max_calls": "0"}, "max_calls", "whole number"),
                              ({"analyst": "model", "max_calls": "many"}, "max_calls", "whole number"),
                              ({"max_calls": "5"}, "max_calls", "only when asking the model"),
                              ({"analyst": "guess"}, "analyst", "cached answers only")):
        answer = client.post("/backtests", data=form | bad)
        assert answer.status_code == 422 and f'data-error-for="{field}"' in answer.text and words in answer.text
    assert fake.chat_requests == []

    fake.enqueue(Behaviour.ok(HOLD), Behaviour.ok(HOLD))
    answer = client.post("/backtests", data=form | {"analyst": "model", "max_calls": "2"})
    assert answer.status_code == 303, answer.text
    backtest_id = answer.headers["location"].rsplit("/", 1)[1]
    api = _wait(alice, backtest_id)
    assert api["status"] == "succeeded" and api["params"]["analyst"] == "model" and len(fake.chat_requests) == 2
    analysis = api["report"]["analysis"]
    page = client.get(f"/backtests/{backtest_id}").text
    assert 'data-testid="backtest-analysis"' in page and "asking the model" in page
    for key in ("asked", "cached", "answered_by_model", "missing", "failed"):
        assert f'<dd data-field="{key}">{analysis[key]}</dd>' in page, key
    assert f'<dd data-field="calls">{analysis["calls"]} of at most 2</dd>' in page

    empty = _wait(alice, client.post("/backtests", data={
        **form, "from": "2005-02-01", "to": "2005-02-03"}).headers["location"].rsplit("/", 1)[1])
    missing = empty["report"]["analysis"]
    assert missing["mode"] == "cached" and missing["missing"] == 3 and len(fake.chat_requests) == 2
    page = client.get(f"/backtests/{empty['id']}").text
    assert "cached answers only" in page and '<dd data-field="missing">3</dd>' in page
    assert ", ".join(missing["missing_dates"]) in page


def test_a_trades_session_of_a_model_backtest_reruns_through_the_13_steps_from_the_cache(model_app, fake, uid):
    """The full lineage of a model backtest's decision: the session re-run through the live steps finds the
    backtest's answer under the same key (the request built from a live run's window of the stored bars), asks
    no model, and decides what the backtest decided."""
    answers, rules_report = _rules_answers(model_app, START, END)
    fake.enqueue(*(Behaviour.ok(a) for a in answers))
    backtest_id, report = run_backtest(model_app, uid, BacktestRequest("llm", START, END, analyst="model",
                                                                       max_calls=20))
    day = trade_sessions(model_app, uid, backtest_id, report["trades"])[0]["entry"]  # the entry's decision
    asked = len(fake.chat_requests)
    execution_id = rerun_session(model_app, uid, backtest_id, date.fromisoformat(day))
    rerun = get_execution(model_app, execution_id)
    assert rerun["status"] == "succeeded", rerun["error"]
    analyze = step(rerun, "analyze")
    assert "cached" in analyze["output"]["label"] and len(fake.chat_requests) == asked  # no model asked
    assert step(rerun, "decide_signal")["output"]["action"] == "BUY"
    assert step(rerun, "place_order")["output"]["orders"], "the entry the backtest made is made again"
