"""OpenAICompatAnalyst against a real local HTTP server: the SDK, HTTP stack and our validation all run."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.fakes.openai_server import VALID_BUY, Behaviour, FakeOpenAIServer
from tradetrail.analyst.openai_compat import OpenAICompatAnalyst, answer_json_schema
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult, ChartImage

KEY = "sk-planted-SECRET-7f3a9c1e5b"


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def _chart(timeframe: str, color: tuple[int, int, int]) -> ChartImage:
    png = _png(color)
    return ChartImage(timeframe=timeframe, png=png, sha256=hashlib.sha256(png).hexdigest())


@pytest.fixture
def request_() -> AnalysisRequest:
    return AnalysisRequest(
        symbol="AAPL",
        as_of="2024-05-01T15:00:00Z",
        system_prompt="You are a careful swing-trading analyst. Answer in JSON.",
        timeframe_prompts={"1h": "Hourly chart of AAPL, RSI 61.", "4h": "Four-hour chart of AAPL, RSI 58."},
        images=[_chart("1h", (200, 10, 10)), _chart("4h", (10, 10, 200))],
        indicators={"1h": {"rsi": 61.0}, "4h": {"rsi": 58.0}},
        confirmation={},
        prompt_hash="abc123",
    )


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _analyst(srv: FakeOpenAIServer, **kw: Any) -> OpenAICompatAnalyst:
    opts: dict[str, Any] = {"timeout_s": 2.0, "max_attempts": 3, "backoff_s": 0.01} | kw
    return OpenAICompatAnalyst(base_url=srv.base_url, api_key=KEY, model="fake-vision", **opts)


def _fails(srv: FakeOpenAIServer, req: AnalysisRequest, *behaviours: Behaviour, **kw: Any) -> AnalysisFailed:
    srv.enqueue(*behaviours)
    with pytest.raises(AnalysisFailed) as info:
        _analyst(srv, **kw).analyze(req)
    return info.value


def _assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc.args)
    if isinstance(exc, AnalysisFailed):
        text += json.dumps(exc.details, default=str) + repr(exc.details)
    assert KEY not in text


# --- request shape -------------------------------------------------------------------------------------


def test_request_carries_images_prompts_schema_and_key(srv, request_):
    result = _analyst(srv).analyze(request_)
    assert isinstance(result, AnalysisResult)
    [sent] = srv.chat_requests
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "fake-vision"
    system, user = body["messages"]
    assert system == {"role": "system", "content": request_.system_prompt}
    assert user["role"] == "user"
    parts = user["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url"]
    for i, image in enumerate(request_.images):
        assert parts[2 * i]["text"] == request_.timeframe_prompts[image.timeframe]
        url = parts[2 * i + 1]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == image.png
        assert parts[2 * i + 1]["image_url"]["detail"] == "high"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "analyst_answer"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == answer_json_schema()


def test_strict_schema_requires_every_field_and_forbids_extras():
    schema = answer_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) == set(VALID_BUY)
    assert {"type": "null"} in schema["properties"]["entry"]["anyOf"]  # Optional -> required but nullable


def test_missing_key_uses_placeholder(srv, request_):
    OpenAICompatAnalyst(base_url=srv.base_url, api_key=None, model="m").analyze(request_)
    assert srv.chat_requests[0].headers["authorization"] == "Bearer not-needed"


# --- valid answers -------------------------------------------------------------------------------------


def test_valid_answer_becomes_result(srv, request_):
    srv.enqueue(Behaviour.ok(prompt_tokens=1234, completion_tokens=56))
    result = _analyst(srv).analyze(request_)
    assert result.answer.action == "BUY"
    assert result.answer.stop_loss == 98.0 and result.answer.entry == 101.5
    assert result.analyst == "openai_compat" and result.model == "fake-vision"
    assert (result.prompt_tokens, result.completion_tokens) == (1234, 56)
    assert result.attempts == 1 and result.extra["failed_attempts"] == []
    assert json.loads(result.raw) == VALID_BUY
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.extra["response_id"].startswith("chatcmpl-")


def test_hold_with_null_levels_is_valid(srv, request_):
    hold = {**VALID_BUY, "action": "HOLD", "trend": "neutral", "entry": None, "stop_loss": None,
            "take_profit": None}
    srv.enqueue(Behaviour.ok(hold))
    assert _analyst(srv).analyze(request_).answer.action == "HOLD"


# --- bad answers: fail at once, never retried ----------------------------------------------------------

BAD_ANSWERS = {
    "invalid_json": (Behaviour.raw('{"action": "BUY", "confidence": 7'), "invalid_json"),
    "prose": (Behaviour.raw("I think you should buy."), "invalid_json"),
    "wrong_type": (Behaviour.ok({**VALID_BUY, "confidence": "high"}), "schema"),
    "numeric_string": (Behaviour.ok({**VALID_BUY, "confidence": "72"}), "schema"),
    "extra_field": (Behaviour.ok({**VALID_BUY, "note": "x"}), "schema"),
    "missing_field": (Behaviour.ok({k: v for k, v in VALID_BUY.items() if k != "trend"}), "schema"),
    "not_an_object": (Behaviour.raw("[1, 2, 3]"), "schema"),
    "buy_stop_above_entry": (Behaviour.ok({**VALID_BUY, "stop_loss": 105.0}), "schema"),
    "sell_without_levels": (Behaviour.ok({**VALID_BUY, "action": "SELL", "entry": None}), "schema"),
    "confidence_over_100": (Behaviour.ok({**VALID_BUY, "confidence": 101}), "schema"),
    "refusal": (Behaviour.refused(), "refusal"),
    "null_content": (Behaviour.raw(None), "empty"),
    "blank_content": (Behaviour.raw("  "), "empty"),
    "length": (Behaviour.length(), "length"),
    "length_with_valid_json": (Behaviour.ok(finish_reason="length"), "length"),
    "no_choices": (Behaviour.empty_choices(), "no_choices"),
}


@pytest.mark.parametrize("case", BAD_ANSWERS)
def test_bad_answer_fails_without_retry(srv, request_, case):
    behaviour, reason = BAD_ANSWERS[case]
    exc = _fails(srv, request_, behaviour)
    assert exc.details["reason"] == reason
    assert exc.details["attempts"] == 1
    assert len(srv.chat_requests) == 1
    assert "finish_reason" in exc.details and "raw" in exc.details
    _assert_no_key(exc)


def test_schema_failure_lists_validation_errors(srv, request_):
    exc = _fails(srv, request_, Behaviour.ok({**VALID_BUY, "stop_loss": 105.0}))
    assert any("stop_loss < entry < take_profit" in e for e in exc.details["errors"])
    assert "stop_loss < entry" in str(exc)
    assert json.loads(exc.details["raw"])["stop_loss"] == 105.0


def test_raw_content_is_truncated(srv, request_):
    exc = _fails(srv, request_, Behaviour.raw("x" * 10_000))
    assert 1900 <= len(exc.details["raw"]) <= 2000


# --- transport failures: retried -----------------------------------------------------------------------


def test_429_then_ok_honours_retry_after(srv, request_):
    srv.enqueue(Behaviour.error(429, "slow down", retry_after=0.4), Behaviour.ok())
    result = _analyst(srv, backoff_s=0.0).analyze(request_)
    first, second = srv.chat_requests
    assert result.attempts == 2 and result.answer.action == "BUY"
    assert second.received_at - first.received_at >= 0.38
    assert "429" in result.extra["failed_attempts"][0]


def test_500s_exhaust_attempts(srv, request_):
    exc = _fails(srv, request_, *[Behaviour.error(500)] * 3, Behaviour.ok())
    assert len(srv.chat_requests) == 3
    assert exc.details["reason"] == "retries_exhausted" and exc.details["attempts"] == 3
    assert "HTTP 500" in str(exc) and "3 attempts" in str(exc)
    assert len(exc.details["failed_attempts"]) == 3


def test_503_then_ok(srv, request_):
    srv.enqueue(Behaviour.error(503), Behaviour.ok())
    assert _analyst(srv).analyze(request_).attempts == 2


def test_dropped_connection_is_retried(srv, request_):
    srv.enqueue(Behaviour.drop(), Behaviour.ok())
    result = _analyst(srv).analyze(request_)
    assert result.attempts == 2 and "connection error" in result.extra["failed_attempts"][0]


def test_slow_answer_times_out_and_is_retried(srv, request_):
    exc = _fails(srv, request_, *[Behaviour.slow(1.5)] * 3, timeout_s=0.3)
    assert len(srv.chat_requests) == 3
    assert "timeout" in str(exc) and exc.details["attempts"] == 3


def test_slow_then_fast_succeeds(srv, request_):
    srv.enqueue(Behaviour.slow(1.5), Behaviour.ok())
    assert _analyst(srv, timeout_s=0.3).analyze(request_).attempts == 2


def test_backoff_doubles(srv, request_):
    _fails(srv, request_, *[Behaviour.error(500)] * 3, backoff_s=0.2)
    t = [r.received_at for r in srv.chat_requests]
    assert t[1] - t[0] >= 0.19 and t[2] - t[1] >= 0.39


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_fails_at_once(srv, request_, status):
    exc = _fails(srv, request_, Behaviour.error(status, "nope"))
    assert len(srv.chat_requests) == 1
    assert exc.details["reason"] == "http_error" and exc.details["status"] == status
    assert f"HTTP {status}" in str(exc)


def test_server_rejects_invalid_request_and_we_do_not_retry(srv, request_):
    """A real 400 from the fake's own validation (a JPEG passed off as PNG), not a scripted one."""
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    bad = ChartImage("1h", jpeg.getvalue(), "x")
    req = AnalysisRequest(**{**request_.__dict__, "images": [bad]})
    exc = _fails(srv, req)
    assert len(srv.chat_requests) == 1
    assert exc.details["status"] == 400 and "not a PNG" in str(exc)


# --- secrecy -------------------------------------------------------------------------------------------


def test_key_never_leaks_even_when_server_echoes_it(srv, request_, caplog):
    caplog.set_level(logging.DEBUG)
    exc = _fails(srv, request_, Behaviour.error(401, echo_key=True))
    assert "Incorrect API key provided" in str(exc)  # the echo arrived, and was scrubbed
    _assert_no_key(exc)
    for status in (500, 503, 500):
        srv.enqueue(Behaviour.error(status, echo_key=True))
    with pytest.raises(AnalysisFailed) as info:
        _analyst(srv).analyze(request_)
    _assert_no_key(info.value)
    assert "***" in str(info.value)
    srv.enqueue(Behaviour.error(503, echo_key=True), Behaviour.ok())
    result = _analyst(srv).analyze(request_)
    assert "***" in result.extra["failed_attempts"][0] and KEY not in json.dumps(result.extra)
    assert "retrying" in caplog.text  # our warnings were captured, so the next line means something
    assert KEY not in caplog.text
    assert KEY not in repr(_analyst(srv))


def test_missing_timeframe_prompt_fails_before_any_call(srv, request_):
    req = AnalysisRequest(**{**request_.__dict__, "timeframe_prompts": {"1h": "only hourly"}})
    exc = _fails(srv, req)
    assert "4h" in str(exc) and srv.chat_requests == []


# --- the fake itself must be strict, or the tests above prove little -----------------------------------


def _post(srv: FakeOpenAIServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{srv.base_url}/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _good_body() -> dict[str, Any]:
    url = "data:image/png;base64," + base64.b64encode(_png((1, 2, 3))).decode()
    return {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                  {"type": "image_url", "image_url": {"url": url}}]}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "a", "strict": True, "schema": answer_json_schema()}},
    }


def _with_image_url(url: str) -> dict[str, Any]:
    body = _good_body()
    body["messages"][0]["content"][1]["image_url"]["url"] = url
    return body


@pytest.mark.parametrize("body", [
    {**_good_body(), "messages": []},
    {k: v for k, v in _good_body().items() if k != "response_format"},
    {**_good_body(), "response_format": {"type": "json_object"}},
    _with_image_url("https://example.com/chart.png"),
    _with_image_url("data:image/png;base64,bm90IGEgcG5n"),  # "not a png"
    _with_image_url("data:image/png;base64,%%%"),
    {**_good_body(), "response_format": {"type": "json_schema", "json_schema": {
        "name": "a", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
], ids=["no_messages", "no_format", "json_object", "remote_url", "not_png", "bad_b64", "loose_schema"])
def test_fake_rejects_invalid_requests(srv, body):
    status, payload = _post(srv, body)
    assert status == 400
    assert payload["error"]["type"] == "invalid_request_error" and payload["error"]["message"]


def test_fake_accepts_good_request_and_lists_models(srv):
    status, payload = _post(srv, _good_body())
    assert status == 200 and payload["object"] == "chat.completion"
    assert json.loads(payload["choices"][0]["message"]["content"]) == VALID_BUY
    with urllib.request.urlopen(f"{srv.base_url}/models", timeout=5) as resp:
        assert json.loads(resp.read())["data"][0]["id"]
