"""Analyst adapter for any OpenAI-compatible vision model (OpenAI, vLLM, llama.cpp, LM Studio, ...).

The model gets the rendered prompts plus one PNG per timeframe and must answer with strict JSON. We never
trust the server's structured-output guarantee: the answer is parsed and validated here, and anything that
does not validate raises :class:`AnalysisFailed`. Only transport problems (connection errors, timeouts,
429, 5xx) are retried, in our own loop so that attempts and backoff are visible in lineage.

A server that refuses ``response_format: json_schema`` gets ``json_object`` and then no response_format, with
the schema in the prompt (:mod:`tradetrail.analyst.response_format`); a refusal is never retried as it is, and
in a forced mode it fails the analysis.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from tradetrail.analyst import response_format as rf
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult
from tradetrail.analyst.schema import AnalystAnswer

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
RAW_LIMIT = 2000
ERROR_LIMIT = 300
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one
SCHEMA_NAME = "analyst_answer"


def answer_json_schema() -> dict[str, Any]:
    """The strict JSON schema of AnalystAnswer (what the SDK's own ``parse()`` would send)."""
    return rf.strict_json_schema(AnalystAnswer)


@dataclass
class _Retryable:
    """A failed attempt worth retrying, with the server's Retry-After (seconds) if it sent one."""

    error: str
    retry_after: float | None = None


@dataclass
class _Refused:
    """The server does not take the response_format asked for (HTTP 400/422 naming it)."""

    error: str
    status: int


def _retry_after(err: openai.APIStatusError) -> float | None:
    value = err.response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
    return seconds if seconds is not None and seconds >= 0 else None


def _short(text: str, limit: int = ERROR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _validation_errors(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors(include_url=False)[:20]:
        loc = ".".join(str(p) for p in e["loc"]) or "<answer>"
        out.append(_short(f"{loc}: {e['msg']}", 200))
    return out


class OpenAICompatAnalyst:
    """Reads charts through an OpenAI-compatible chat.completions endpoint with a strict JSON answer."""

    name = "openai_compat"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float = 60.0,
        max_attempts: int = 3,
        backoff_s: float = 1.0,
        image_detail: str = "high",
        response_format: str = "auto",
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout_s <= 0 or backoff_s < 0:
            raise ValueError("timeout_s must be > 0 and backoff_s >= 0")
        if image_detail not in ("auto", "low", "high"):
            raise ValueError("image_detail must be auto, low or high")
        if response_format != "auto" and response_format not in rf.MODES:
            raise ValueError(f"response_format must be auto or one of {', '.join(rf.MODES)}")
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.image_detail = image_detail
        self.forced_mode = None if response_format == "auto" else response_format
        self._secret = api_key or ""
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or PLACEHOLDER_KEY, timeout=timeout_s, max_retries=0
        )
        self._schema = answer_json_schema()

    def __repr__(self) -> str:
        return (f"OpenAICompatAnalyst(base_url={self.base_url!r}, model={self.model!r}, "
                f"timeout_s={self.timeout_s}, max_attempts={self.max_attempts}, "
                f"response_format={self.forced_mode or 'auto'!r})")

    def close(self) -> None:
        self._client.close()

    # --- request -------------------------------------------------------------------------------------

    def planned_mode(self) -> str:
        """The mode the next call starts with: the forced one, else the one this server last accepted for
        the model, else json_schema."""
        return self.forced_mode or rf.remembered(self.base_url, self.model) or rf.JSON_SCHEMA

    def build_messages(self, request: AnalysisRequest, mode: str = rf.JSON_SCHEMA) -> list[dict[str, Any]]:
        """System prompt, then one user message: per chart its timeframe prompt followed by the image. Unless
        the server holds the schema (json_schema mode) the system prompt ends with it."""
        if not request.images:
            raise AnalysisFailed("openai_compat: request has no chart images", {"reason": "bad_request"})
        content: list[dict[str, Any]] = []
        for image in request.images:
            prompt = request.timeframe_prompts.get(image.timeframe)
            if prompt is None:
                raise AnalysisFailed(f"openai_compat: no prompt for timeframe {image.timeframe!r}",
                                     {"reason": "bad_request"})
            url = "data:image/png;base64," + base64.b64encode(image.png).decode("ascii")
            content.append({"type": "text", "text": prompt})
            content.append({"type": "image_url", "image_url": {"url": url, "detail": self.image_detail}})
        system = request.system_prompt
        if mode != rf.JSON_SCHEMA:
            system = f"{system}\n\n{rf.schema_instruction(self._schema)}"
        return [{"role": "system", "content": system}, {"role": "user", "content": content}]

    def response_format(self, mode: str = rf.JSON_SCHEMA) -> dict[str, Any] | None:
        return rf.response_format_body(mode, self._schema, SCHEMA_NAME)

    # --- main loop -----------------------------------------------------------------------------------

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        mode = self.planned_mode()
        messages = self.build_messages(request, mode)
        failures: list[str] = []
        refused: list[str] = []  # "mode: error" per refusal; a refusal does not use up a transport attempt
        tried: list[str] = []  # the modes refused in this call (a remembered one refused: from the top again)
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            started = time.perf_counter()
            outcome = self._call_once(messages, mode)
            latency_ms = (time.perf_counter() - started) * 1000.0
            if isinstance(outcome, _Refused):
                refused.append(f"{mode}: {self._scrub(outcome.error)}")
                tried.append(mode)
                fallback = None if self.forced_mode else rf.next_untried(tried)
                if fallback is None:
                    if not self.forced_mode:
                        rf.forget(self.base_url, self.model)  # nothing taken: the next call starts from the top
                    raise self._scrubbed(self._refusal_failure(mode, outcome, attempt, failures, refused))
                log.warning("%s: %s refused response_format %s (%s); asking with %s", self.name, self.base_url,
                            mode, refused[-1], fallback)
                mode, attempt = fallback, attempt - 1
                messages = self.build_messages(request, mode)
                continue
            if isinstance(outcome, _Retryable):
                error = self._scrub(outcome.error)
                failures.append(f"attempt {attempt}: {error}")
                if attempt == self.max_attempts:
                    break
                delay = self._delay(attempt, outcome.retry_after)
                log.warning("%s attempt %d/%d failed (%s); retrying in %.2fs",
                            self.name, attempt, self.max_attempts, error, delay)
                time.sleep(delay)
                continue
            if isinstance(outcome, AnalysisFailed):
                outcome.details.setdefault("attempts", attempt)
                outcome.details.update(failed_attempts=failures, response_format=mode,
                                       response_format_refused=refused)
                raise self._scrubbed(outcome)
            if self.forced_mode is None:
                rf.remember(self.base_url, self.model, mode)  # the server took it: later calls start here
            return self._result(outcome, mode, attempt, latency_ms, failures, refused)
        raise self._scrubbed(AnalysisFailed(
            f"openai_compat: no answer after {self.max_attempts} attempts; last error: {failures[-1]}",
            {"reason": "retries_exhausted", "attempts": self.max_attempts, "failed_attempts": failures,
             "model": self.model, "response_format": mode, "response_format_refused": refused},
        ))

    def _refusal_failure(self, mode: str, refusal: _Refused, attempt: int, failures: list[str],
                         refused: list[str]) -> AnalysisFailed:
        if self.forced_mode:
            text = (f"the server refused response_format {mode}, which TRADETRAIL_LLM_RESPONSE_FORMAT forces "
                    f"for model {self.model} ({refusal.error}); set auto or another mode")
        else:
            text = f"the server refused every response_format mode; last: {refusal.error}"
        return AnalysisFailed(f"openai_compat: {text}", {
            "reason": "response_format_refused", "status": refusal.status, "model": self.model,
            "attempts": attempt, "failed_attempts": failures, "response_format": mode,
            "response_format_refused": refused})

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_BACKOFF_S)
        return min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)

    def _call_once(self, messages: list[dict[str, Any]], mode: str) -> Any:
        """One HTTP call: the completion, a _Retryable, a _Refused or an AnalysisFailed (returned, not raised).

        Returning instead of raising keeps SDK exceptions (whose text may echo the key) out of
        ``__context__`` of what we raise.
        """
        try:
            # The SDK's documented raw POST: the same request and errors as chat.completions.create, without
            # its walk over the typed parameters, base64 images included (~3 ms of CPU per call).
            body: dict[str, Any] = {"model": self.model, "messages": messages}
            fmt = self.response_format(mode)
            if fmt is not None:
                body["response_format"] = fmt
            return self._client.post("/chat/completions", cast_to=ChatCompletion, body=body)
        except openai.APITimeoutError:
            return _Retryable(f"timeout after {self.timeout_s:g}s")
        except openai.APIConnectionError as err:
            cause = type(err.__cause__).__name__ if err.__cause__ else "unknown"
            return _Retryable(f"connection error ({cause})")
        except openai.APIStatusError as err:
            text = _short(f"HTTP {err.status_code}: {err.message}")
            if err.status_code == 429 or err.status_code >= 500:
                return _Retryable(text, _retry_after(err))
            said = " ".join(str(part) for part in (err.message, getattr(err, "param", None) or "",
                                                    getattr(err, "code", None) or ""))
            if rf.is_refusal(mode, err.status_code, said):
                return _Refused(text, err.status_code)
            return AnalysisFailed(f"openai_compat: request rejected: {text}",
                                  {"reason": "http_error", "status": err.status_code, "model": self.model,
                                   "response_format": mode})
        except openai.OpenAIError as err:
            return AnalysisFailed(f"openai_compat: {type(err).__name__}: {_short(str(err))}",
                                  {"reason": "client_error", "model": self.model})

    # --- answer --------------------------------------------------------------------------------------

    def _result(
        self, completion: Any, mode: str, attempt: int, latency_ms: float, failures: list[str], refused: list[str]
    ) -> AnalysisResult:
        """Validate the completion into an AnalysisResult; any doubt raises AnalysisFailed (never retried)."""
        choices = getattr(completion, "choices", None) or []
        choice = choices[0] if choices else None
        message = getattr(choice, "message", None)
        finish_reason = getattr(choice, "finish_reason", None)
        content = getattr(message, "content", None)
        details: dict[str, Any] = {
            "model": self.model, "attempts": attempt, "finish_reason": finish_reason,
            "response_id": getattr(completion, "id", None), "failed_attempts": failures,
            "raw": _short(content, RAW_LIMIT) if isinstance(content, str) else None,
            "response_format": mode, "response_format_refused": refused,
        }

        def fail(reason: str, text: str, errors: list[str] | None = None) -> AnalysisFailed:
            return self._scrubbed(AnalysisFailed(f"openai_compat: {text}",
                                                 {**details, "reason": reason, "errors": errors or []}))

        if message is None:
            raise fail("no_choices", "response has no choices")
        if getattr(message, "refusal", None):
            raise fail("refusal", f"model refused: {_short(str(message.refusal), 200)}")
        if finish_reason == "length":
            raise fail("length", "answer was cut off (finish_reason=length)")
        if finish_reason == "content_filter":
            raise fail("content_filter", "answer was withheld by a content filter")
        if not isinstance(content, str) or not content.strip():
            raise fail("empty", "answer content is empty")
        try:
            data = json.loads(rf.reply_json(mode, content))
        except json.JSONDecodeError as err:
            raise fail("invalid_json", f"answer is not valid JSON ({err.msg} at char {err.pos})",
                       [f"{err.msg} at char {err.pos}"]) from None
        try:
            answer = AnalystAnswer.model_validate(data, strict=True)
        except ValidationError as err:
            errors = _validation_errors(err)
            raise fail("schema", f"answer does not fit the schema: {'; '.join(errors[:3])}", errors) from None

        usage = getattr(completion, "usage", None)
        extra = {"response_id": details["response_id"], "finish_reason": finish_reason,
                 "failed_attempts": failures, "response_format": mode, "response_format_refused": refused,
                 "label": rf.label(self.model, mode)}
        return AnalysisResult(
            answer=answer,
            analyst=self.name,
            model=self.model,
            raw=content,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_ms=round(latency_ms, 1),
            attempts=attempt,
            extra=self._scrub(extra),
        )

    # --- secrecy -------------------------------------------------------------------------------------

    def _scrub(self, value: Any) -> Any:
        """Replace the API key anywhere in strings (a server may echo it back in an error)."""
        if isinstance(value, str):
            return value.replace(self._secret, "***") if self._secret else value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    def _scrubbed(self, exc: AnalysisFailed) -> AnalysisFailed:
        return AnalysisFailed(self._scrub(str(exc)), self._scrub(exc.details))
