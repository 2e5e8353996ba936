"""Request bounds applied to every route before it runs: body size, JSON depth, text that cannot be stored.

An ASGI middleware, so nothing is read into memory past the bound: a ``Content-Length`` over
``TRADETRAIL_MAX_REQUEST_BYTES`` is refused before a byte of the body is read, and a body streamed without
one is counted as it arrives and refused as soon as it passes the bound (413). A JSON body is then checked
(``json_checks``: UTF-8, nesting depth ``TRADETRAIL_MAX_JSON_DEPTH``, well-formed, no NUL or lone surrogate)
and a NUL in the path or query string is refused too (422) — PostgreSQL cannot store one, and both backends
must answer the same. Every refusal is in the documented error shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradetrail.api.errors import error_response
from tradetrail.api.json_checks import NUL_MESSAGE, check_json_body, is_json_media_type

CHECK_INLINE_BYTES = 64 * 1024  # larger bodies are checked in a worker thread: the event loop keeps serving


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    field: str
    message: str

    async def send(self, scope: Scope, receive: Receive, send: Send) -> None:
        summary = f"invalid input: {self.field}: {self.message}" if self.status == 422 else self.message
        response = error_response(self.status, self.code, summary,
                                  fields=[{"field": self.field, "message": self.message}])
        await response(scope, receive, send)


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int):
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, refusal = None, _url_problem(scope) or self._length_problem(scope)
        if refusal is None:
            body, refusal = await self._read_body(receive)
        if refusal is None and body and is_json_media_type(_header(scope, b"content-type")):
            problem = (check_json_body(body, self.max_depth) if len(body) <= CHECK_INLINE_BYTES
                       else await run_in_threadpool(check_json_body, body, self.max_depth))
            refusal = Refusal(422, "invalid_input", problem.field, problem.message) if problem else None
        if refusal is not None:
            await refusal.send(scope, receive, send)
        elif body is not None:  # None: the client went away before its body was complete
            await self.app(scope, _replay(body, receive), send)

    def _length_problem(self, scope: Scope) -> Refusal | None:
        declared = _header(scope, b"content-length")
        if declared is None:
            return None
        if not declared.strip().isdigit():
            return Refusal(400, "bad_request", "header.content-length", "Content-Length must be a whole number")
        return self._too_large() if int(declared) > self.max_bytes else None

    def _too_large(self) -> Refusal:
        return Refusal(413, "too_large", "body", f"the request body is larger than {self.max_bytes} bytes")

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, Refusal | None]:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None, self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once, then the server's own messages (a disconnect, for instance)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _url_problem(scope: Scope) -> Refusal | None:
    if "\x00" in scope.get("path", ""):
        return Refusal(422, "invalid_input", "path", NUL_MESSAGE)
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in value:
                return Refusal(422, "invalid_input", "query." + ("<name>" if "\x00" in key else key[:64]), NUL_MESSAGE)
    return None
