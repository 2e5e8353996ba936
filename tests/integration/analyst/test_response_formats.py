"""OpenAICompatAnalyst against fake servers that refuse or ignore ``response_format: json_schema``: the fallback
to json_object and to no response_format, the mode remembered per server and model, the forced modes, and the
same strict validation whatever the mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.openai_server import (
    ANY_FORMAT,
    NO_JSON_MODES,
    ONLY_JSON_OBJECT,
    VALID_BUY,
    Behaviour,
    FakeOpenAIServer,
)
from tests.integration.analyst.test_openai_analyst import KEY, _assert_no_key, _chart, _post
from tradetrail.analyst import response_format as rf
from tradetrail.analyst.openai_compat import OpenAICompatAnalyst, answer_json_schema
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest

SCHEMA_LINE = json.dumps(answer_json_schema(), sort_keys=True, separators=(",", ":"))


@pytest.fixture
def request_() -> AnalysisRequest:
    return AnalysisRequest(symbol="AAPL", as_of="2024-05-01T15:00:00Z",
                           system_prompt="You are a careful swing-trading analyst.",
                           timeframe_prompts={"1h": "Hourly chart, RSI 61.", "4h": "Four-hour chart, RSI 58."},
                           images=[_chart("1h", (200, 10, 10)), _chart("4h", (10, 10, 200))],
                           indicators={}, confirmation={}, prompt_hash="abc123")


def _server(**kw: Any) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(**kw) as server:
        yield server


@pytest.fixture
def schema_refused() -> Iterator[FakeOpenAIServer]:
    yield from _server(accepts=ONLY_JSON_OBJECT)


@pytest.fixture
def json_refused() -> Iterator[FakeOpenAIServer]:
    yield from _server(accepts=NO_JSON_MODES)


@pytest.fixture
def ignoring() -> Iterator[FakeOpenAIServer]:
    yield from _server(accepts=ANY_FORMAT)


def _analyst(srv: FakeOpenAIServer, model: str = "fake-vision", **kw: Any) -> OpenAICompatAnalyst:
    opts: dict[str, Any] = {"timeout_s": 2.0, "max_attempts": 3, "backoff_s": 0.01} | kw
    return OpenAICompatAnalyst(base_url=srv.base_url, api_key=KEY, model=model, **opts)


def _formats(srv: FakeOpenAIServer) -> list[str]:
    """The response_format type of each request sent (``none`` when it had none)."""
    return [(r.body.get("response_format") or {"type": "none"})["type"] for r in srv.chat_requests]


def _system(srv: FakeOpenAIServer, i: int) -> str:
    return srv.chat_requests[i].body["messages"][0]["content"]


# --- fallback ------------------------------------------------------------------------------------------


def test_a_server_refusing_json_schema_gets_json_object_with_the_schema_in_the_prompt(schema_refused, request_):
    result = _analyst(schema_refused).analyze(request_)
    assert _formats(schema_refused) == ["json_schema", "json_object"]
    assert _system(schema_refused, 0) == request_.system_prompt  # json_schema: the server holds the schema
    assert _system(schema_refused, 1).startswith(request_.system_prompt + "\n\n")
    assert _system(schema_refused, 1).endswith(SCHEMA_LINE)
    first, second = (r.body["messages"][1] for r in schema_refused.chat_requests)
    assert first == second  # the charts and timeframe prompts are sent unchanged
    assert result.answer.model_dump() == VALID_BUY
    assert result.extra["response_format"] == "json_object"
    [refusal] = result.extra["response_format_refused"]
    assert refusal.startswith("json_schema: HTTP 400") and "not supported" in refusal
    assert result.extra["label"] == "model fake-vision (response_format json_object)"
    assert result.attempts == 1  # a refusal is not a transport attempt


def test_a_refusal_named_only_in_the_message_is_recognised(request_):
    for server in _server(accepts=ONLY_JSON_OBJECT, refusal_param=False):
        assert _analyst(server).analyze(request_).extra["response_format"] == "json_object"
        assert _formats(server) == ["json_schema", "json_object"]


def test_a_server_refusing_json_object_too_gets_no_response_format(json_refused, request_):
    result = _analyst(json_refused).analyze(request_)
    assert _formats(json_refused) == ["json_schema", "json_object", "none"]
    assert "response_format" not in json_refused.chat_requests[2].body
    assert _system(json_refused, 2).endswith(SCHEMA_LINE)
    assert result.extra["response_format"] == "prompt" and len(result.extra["response_format_refused"]) == 2
    assert result.answer.action == "BUY"


def test_prompt_mode_takes_one_fenced_object(json_refused, request_):
    json_refused.enqueue(Behaviour.raw("```json\n" + json.dumps(VALID_BUY) + "\n```"))
    result = _analyst(json_refused).analyze(request_)
    assert result.answer.model_dump() == VALID_BUY and result.raw.startswith("```json")


@pytest.mark.parametrize("content", [
    "Sure! Here is my analysis:\n```json\n" + json.dumps(VALID_BUY) + "\n```",
    json.dumps(VALID_BUY) + "\n" + json.dumps(VALID_BUY),
    "BUY, with a stop at 98.",
], ids=["prose_then_fence", "two_objects", "prose"])
def test_prompt_mode_guesses_nothing(json_refused, request_, content):
    json_refused.enqueue(Behaviour.raw(content))
    with pytest.raises(AnalysisFailed) as info:
        _analyst(json_refused).analyze(request_)
    assert info.value.details["reason"] == "invalid_json"
    assert info.value.details["response_format"] == "prompt"
    assert len(json_refused.chat_requests) == 3  # two refusals, one answer: an invalid answer is never re-asked


def test_transport_errors_after_a_fallback_are_still_retried(schema_refused, request_):
    schema_refused.enqueue(Behaviour.error(503), Behaviour.ok())  # the refused request never reaches the queue
    result = _analyst(schema_refused).analyze(request_)
    assert _formats(schema_refused) == ["json_schema", "json_object", "json_object"]
    assert result.attempts == 2 and "HTTP 503" in result.extra["failed_attempts"][0]


def test_retries_exhausted_after_a_fallback_say_which_mode(schema_refused, request_):
    schema_refused.enqueue(*[Behaviour.error(500)] * 3)
    with pytest.raises(AnalysisFailed) as info:
        _analyst(schema_refused).analyze(request_)
    assert info.value.details["reason"] == "retries_exhausted"
    assert info.value.details["response_format"] == "json_object"
    assert len(schema_refused.chat_requests) == 4  # one refusal, then the three attempts the setting allows


# --- remembered per server and model -------------------------------------------------------------------


def test_the_mode_that_worked_is_remembered_for_the_server_and_model(json_refused, request_):
    _analyst(json_refused).analyze(request_)
    assert len(json_refused.chat_requests) == 3
    again = _analyst(json_refused)  # a new analyst in the same process: the refusals are not paid again
    assert again.planned_mode() == "prompt"
    again.analyze(request_)
    assert _formats(json_refused)[3:] == ["none"]
    _analyst(json_refused, model="other-model").analyze(request_)  # another model starts from json_schema
    assert _formats(json_refused)[4:] == ["json_schema", "json_object", "none"]


def test_a_forced_mode_is_neither_remembered_nor_read_from_memory(schema_refused, request_):
    _analyst(schema_refused, response_format="json_object").analyze(request_)
    assert rf.remembered(schema_refused.base_url, "fake-vision") is None
    _analyst(schema_refused).analyze(request_)  # auto
    assert rf.remembered(schema_refused.base_url, "fake-vision") == "json_object"
    with pytest.raises(AnalysisFailed, match="refused response_format json_schema"):
        _analyst(schema_refused, response_format="json_schema").analyze(request_)


def test_a_server_that_takes_json_schema_is_remembered_so(request_):
    for server in _server():
        _analyst(server).analyze(request_)
        assert rf.remembered(server.base_url, "fake-vision") == "json_schema"
        assert _formats(server) == ["json_schema"]


def test_a_remembered_mode_the_server_now_refuses_starts_from_the_top_again(request_):
    """Another server now answers at the remembered URL (here: one taking only json_schema where the memory says
    json_object): the call asks json_schema again instead of failing every mode below the remembered one, and
    the memory follows the server."""
    for server in _server():
        rf.remember(server.base_url, "fake-vision", "json_object")
        result = _analyst(server).analyze(request_)
        assert result.extra["response_format"] == "json_schema"
        assert _formats(server) == ["json_object", "json_schema"]
        assert rf.remembered(server.base_url, "fake-vision") == "json_schema"


def test_a_server_refusing_every_mode_leaves_nothing_remembered(request_):
    for server in _server(accepts=()):  # refuses even a request without response_format
        rf.remember(server.base_url, "fake-vision", "prompt")
        with pytest.raises(AnalysisFailed, match="refused every response_format mode"):
            _analyst(server).analyze(request_)
        assert _formats(server) == ["none", "json_schema", "json_object"]
        assert rf.remembered(server.base_url, "fake-vision") is None


# --- forced modes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "sent"), [("json_object", "json_object"), ("prompt", "none")])
def test_a_forced_mode_is_asked_at_once(schema_refused, request_, mode, sent):
    result = _analyst(schema_refused, response_format=mode).analyze(request_)
    assert _formats(schema_refused) == [sent]
    assert result.extra["response_format"] == mode and result.extra["response_format_refused"] == []


@pytest.mark.parametrize(("accepts", "mode"), [(ONLY_JSON_OBJECT, "json_schema"), (NO_JSON_MODES, "json_object")])
def test_a_refusal_of_a_forced_mode_fails_at_once_without_retry(request_, accepts, mode):
    for server in _server(accepts=accepts):
        with pytest.raises(AnalysisFailed) as info:
            _analyst(server, response_format=mode).analyze(request_)
        assert len(server.chat_requests) == 1
        exc = info.value
        assert exc.details["reason"] == "response_format_refused" and exc.details["status"] == 400
        assert exc.details["response_format"] == mode
        assert f"refused response_format {mode}" in str(exc) and "TRADETRAIL_LLM_RESPONSE_FORMAT" in str(exc)
        _assert_no_key(exc)


def test_a_bad_forced_mode_is_refused_at_construction(schema_refused):
    with pytest.raises(ValueError, match="response_format"):
        _analyst(schema_refused, response_format="json")


# --- the same strict validation in every mode ----------------------------------------------------------

INVALID = {
    "extra_field": Behaviour.ok({**VALID_BUY, "note": "x"}),
    "missing_field": Behaviour.ok({k: v for k, v in VALID_BUY.items() if k != "trend"}),
    "numeric_string": Behaviour.ok({**VALID_BUY, "confidence": "72"}),
    "stop_above_entry": Behaviour.ok({**VALID_BUY, "stop_loss": 105.0}),
    "infinity": Behaviour.raw(json.dumps(VALID_BUY).replace("108.0", "Infinity")),
    "not_an_object": Behaviour.raw("[1, 2, 3]"),
}


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
@pytest.mark.parametrize("case", INVALID)
def test_invalid_answers_are_rejected_in_the_fallback_modes(schema_refused, request_, mode, case):
    rf.remember(schema_refused.base_url, "fake-vision", mode)  # as a first call that fell back leaves it
    schema_refused.enqueue(INVALID[case])
    with pytest.raises(AnalysisFailed) as info:
        _analyst(schema_refused).analyze(request_)
    assert info.value.details["reason"] == "schema" and info.value.details["response_format"] == mode
    assert _formats(schema_refused) == [{"prompt": "none"}.get(mode, mode)]  # not retried, no further fallback


def test_fenced_json_is_not_accepted_in_json_object_mode(schema_refused, request_):
    schema_refused.enqueue(Behaviour.raw("```json\n" + json.dumps(VALID_BUY) + "\n```"))
    with pytest.raises(AnalysisFailed) as info:
        _analyst(schema_refused, response_format="json_object").analyze(request_)
    assert info.value.details["reason"] == "invalid_json"


# --- a server that ignores response_format -------------------------------------------------------------


def test_an_ignoring_server_is_used_as_json_schema_and_its_answers_still_checked(ignoring, request_):
    assert _analyst(ignoring).analyze(request_).extra["response_format"] == "json_schema"
    ignoring.enqueue(Behaviour.raw("I would buy here, stop at 98."))
    with pytest.raises(AnalysisFailed) as info:
        _analyst(ignoring).analyze(request_)
    assert info.value.details["reason"] == "invalid_json"
    assert len(ignoring.chat_requests) == 2  # no fallback on a bad answer: only a refusal falls back


def test_an_ignoring_server_forced_to_prompt_mode_sees_the_schema(ignoring, request_):
    ignoring.enqueue(Behaviour.raw("```\n" + json.dumps(VALID_BUY) + "\n```"))
    result = _analyst(ignoring, response_format="prompt").analyze(request_)
    assert _formats(ignoring) == ["none"] and _system(ignoring, 0).endswith(SCHEMA_LINE)
    assert result.answer.model_dump() == VALID_BUY


# --- the fake's new strictness -------------------------------------------------------------------------


def test_the_fake_wants_the_word_json_in_json_object_mode(schema_refused, request_):
    bare = AnalysisRequest(**{**request_.__dict__, "system_prompt": "Be careful."})
    analyst = _analyst(schema_refused)
    body = {"model": "m", "messages": analyst.build_messages(bare, "json_schema"),
            "response_format": {"type": "json_object"}}
    status, payload = _post(schema_refused, body)
    assert status == 400 and payload["error"]["param"] == "messages"
    body["messages"] = analyst.build_messages(bare, "json_object")  # the schema text says JSON
    assert _post(schema_refused, body)[0] == 200
