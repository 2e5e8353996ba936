"""A fake OpenAI-compatible server on a real local socket, so the real SDK and its HTTP stack are exercised.

It validates requests the way a strict server would (400 with an OpenAI-style error body), records every
request for assertions, and answers from a queue of scripted behaviours (a valid BUY answer when empty).

Which ``response_format`` it takes is set per server (``accepts``): by default only a strict json_schema, as
before; a server that refuses json_schema, refuses json_object too, or ignores the field entirely
(``accepts=ANY_FORMAT``) is one argument away. A refusal is a 400 naming ``response_format``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"
RF = "response_format"
NO_FORMAT = "none"  # the request has no response_format
ANY_FORMAT = ("*",)  # accepts=ANY_FORMAT: the server ignores response_format, whatever it says
ONLY_JSON_OBJECT = ("json_object", NO_FORMAT)  # refuses json_schema (e.g. an older llama.cpp or LM Studio)
NO_JSON_MODES = (NO_FORMAT,)  # refuses json_schema and json_object

VALID_BUY: dict[str, Any] = {
    "action": "BUY",
    "confidence": 72,
    "trend": "bullish",
    "entry": 101.5,
    "stop_loss": 98.0,
    "take_profit": 108.0,
    "key_factors": ["higher highs on 1h", "MACD cross up on 4h"],
    "reasoning": "Trend is up on both timeframes and price holds above the 20 EMA.",
}


@dataclass(frozen=True)
class Behaviour:
    """One scripted answer to one chat-completions request."""

    kind: str = "ok"  # ok | status | drop | slow
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    no_choices: bool = False
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    echo_key: bool = False
    delay_s: float = 0.0
    then: Behaviour | None = None
    prompt_tokens: int = 321
    completion_tokens: int = 42

    @classmethod
    def ok(cls, answer: dict[str, Any] | None = None, **kw: Any) -> Behaviour:
        return cls(content=json.dumps(VALID_BUY if answer is None else answer), **kw)

    @classmethod
    def raw(cls, content: str | None, **kw: Any) -> Behaviour:
        """Content exactly as given (invalid JSON, or None for a null content)."""
        return cls(content=content, **kw)

    @classmethod
    def refused(cls, text: str = "I can't help with that.") -> Behaviour:
        return cls(content=None, refusal=text)

    @classmethod
    def length(cls) -> Behaviour:
        return cls(content=json.dumps(VALID_BUY)[:40], finish_reason="length")

    @classmethod
    def empty_choices(cls) -> Behaviour:
        return cls(no_choices=True)

    @classmethod
    def error(cls, status: int, message: str = "", retry_after: float | None = None,
              echo_key: bool = False) -> Behaviour:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(kind="status", status=status, message=message or f"fake error {status}",
                   headers=headers, echo_key=echo_key)

    @classmethod
    def slow(cls, seconds: float, then: Behaviour | None = None) -> Behaviour:
        return cls(kind="slow", delay_s=seconds, then=then)

    @classmethod
    def drop(cls) -> Behaviour:
        """Close the connection without sending any response."""
        return cls(kind="drop")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any
    received_at: float  # time.monotonic()


class RequestInvalid(Exception):
    """The request would be rejected by a strict server; the message becomes the 400 error message."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def _check_strict_schema(schema: Any, where: str) -> None:
    """Strict structured outputs need every property required and no additional properties."""
    if not isinstance(schema, dict):
        raise RequestInvalid(f"schema at {where} must be an object", RF)
    if schema.get("type") == "object":
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            raise RequestInvalid(f"{where}: additionalProperties must be false in strict mode", RF)
        if set(schema.get("required", [])) != set(props):
            raise RequestInvalid(f"{where}: every property must be required in strict mode", RF)
        for name, sub in props.items():
            _check_strict_schema(sub, f"{where}.{name}")
    for i, sub in enumerate(schema.get("anyOf", [])):
        _check_strict_schema(sub, f"{where}.anyOf[{i}]")
    if isinstance(schema.get("items"), dict):
        _check_strict_schema(schema["items"], f"{where}.items")


def _check_image(part: dict[str, Any], where: str) -> None:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str) or not url.startswith(DATA_URL_PREFIX):
        raise RequestInvalid(f"{where}: image_url must be a data:image/png;base64 URL", "messages")
    try:
        data = base64.b64decode(url[len(DATA_URL_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestInvalid(f"{where}: image is not valid base64 ({err})", "messages") from None
    if not data.startswith(PNG_SIGNATURE):
        raise RequestInvalid(f"{where}: image data is not a PNG", "messages")
    if image_url.get("detail", "auto") not in ("auto", "low", "high"):
        raise RequestInvalid(f"{where}: invalid image detail", "messages")


def _check_format(body: dict[str, Any], messages: list[Any], accepts: Collection[str], refusal_param: bool) -> None:
    """Refuse a response_format type this server does not take, the way vLLM/llama.cpp-style servers do."""
    fmt = body.get("response_format")
    kind = NO_FORMAT if fmt is None else fmt.get("type") if isinstance(fmt, dict) else "?"
    if kind in accepts:
        texts = [m["content"] if isinstance(m["content"], str) else
                 " ".join(p.get("text", "") for p in m["content"] if p.get("type") == "text") for m in messages]
        if kind == "json_object" and "json" not in " ".join(texts).lower():  # the texts, not the images' base64
            # OpenAI's own rule: JSON mode needs the word JSON somewhere in the messages
            raise RequestInvalid("'messages' must contain the word 'json' in some form, to use 'response_format' "
                                 "of type 'json_object'.", "messages")
        return
    if kind == NO_FORMAT:
        raise RequestInvalid("this model needs a structured-output request", RF if refusal_param else None)
    raise RequestInvalid(f"response_format of type {kind!r} is not supported by this model",
                         RF if refusal_param else None)


def validate_chat_request(body: Any, accepts: Collection[str] = ("json_schema",), refusal_param: bool = True) -> None:
    """Raise RequestInvalid for what a strict OpenAI-compatible server refuses (``accepts``: the
    response_format types it takes, ``none`` for none at all; ANY_FORMAT: it ignores the field)."""
    if not isinstance(body, dict):
        raise RequestInvalid("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestInvalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestInvalid("messages must be a non-empty array", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer", "user", "assistant"):
            raise RequestInvalid(f"messages[{i}] has no valid role", "messages")
        content = msg.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not content:
            raise RequestInvalid(f"messages[{i}].content must be a string or a non-empty array", "messages")
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                continue
            if kind == "image_url":
                _check_image(part, where)
                continue
            raise RequestInvalid(f"{where}: unsupported content part", "messages")
    if accepts == ANY_FORMAT:
        return
    fmt = body.get("response_format")
    if tuple(accepts) != ("json_schema",):
        _check_format(body, messages, accepts, refusal_param)
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            return  # an accepted json_object or no response_format: nothing more to check
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise RequestInvalid("response_format must be of type json_schema", "response_format")
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RequestInvalid("response_format.json_schema needs a name and a schema", "response_format")
    if spec.get("strict") is True:
        _check_strict_schema(spec.get("schema"), "schema")
    elif not isinstance(spec.get("schema"), dict):
        raise RequestInvalid("response_format.json_schema.schema must be an object", "response_format")


def completion_body(model: str, b: Behaviour) -> dict[str, Any]:
    """The documented chat.completion shape."""
    choices = [] if b.no_choices else [{
        "index": 0,
        "message": {"role": "assistant", "content": b.content, "refusal": b.refusal},
        "finish_reason": b.finish_reason,
        "logprobs": None,
    }]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": b.prompt_tokens, "completion_tokens": b.completion_tokens,
                  "total_tokens": b.prompt_tokens + b.completion_tokens},
    }


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end on their own
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.fake.record(RecordedRequest(self.command, self.path, headers, body, time.monotonic()))

    def do_GET(self) -> None:  # noqa: N802
        self._record(None)
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": "fake-vision", "object": "model", "created": 0, "owned_by": "tradetrail-tests"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, error_body(f"unknown path {self.path}", "invalid_request_error"))

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self._record(body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, error_body(f"unknown path {self.path}", "invalid_request_error"))
            return
        try:
            validate_chat_request(body, self.server.fake.accepts, self.server.fake.refusal_param)
        except RequestInvalid as err:
            self._send_json(400, error_body(str(err), "invalid_request_error", err.param))
            return
        self._behave(self.server.fake.next_behaviour(), body["model"])

    def _behave(self, b: Behaviour, model: str) -> None:
        if b.kind == "slow":
            if self.server.fake.stopping.wait(b.delay_s):
                self.close_connection = True
                return
            self._behave(b.then or Behaviour.ok(), model)
        elif b.kind == "drop":
            self.close_connection = True  # nothing written: the client sees a disconnect
        elif b.kind == "status":
            message = b.message
            if b.echo_key:
                message += f" Incorrect API key provided: {self.headers.get('Authorization', '')}"
            type_ = "rate_limit_error" if b.status == 429 else "invalid_request_error"
            if b.status >= 500:
                type_ = "server_error"
            self._send_json(b.status, error_body(message, type_), b.headers)
        else:
            self._send_json(200, completion_body(model, b), b.headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAIServer


class FakeOpenAIServer:
    """``with FakeOpenAIServer() as srv:`` gives ``srv.base_url``; script it with ``srv.enqueue(...)``.

    ``accepts``: the response_format types taken (``none``: no response_format; ANY_FORMAT: ignored);
    ``refusal_param``: whether a refusal's error names ``response_format`` in its ``param`` (else only its
    message does, as some servers write it)."""

    def __init__(self, accepts: Collection[str] = ("json_schema",), refusal_param: bool = True) -> None:
        self.accepts = tuple(accepts)
        self.refusal_param = refusal_param
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAIServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def enqueue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else Behaviour.ok()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/") == "/v1/chat/completions"]
