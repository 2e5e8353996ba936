"""One JSON error shape for every failure: ``{"error": {"code", "message", "fields"}}``.

Service exceptions map to status codes here, so routes stay thin and bad input never becomes a 500. Whatever
Starlette itself answers (unknown path, wrong method, a body it cannot parse) goes through the same shape; a
405 names the methods the path does take in ``Allow`` (OPTIONS included: it is not an operation here).
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None,
                 fields: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.fields = headers or {}, fields or []


ERROR_RESPONSES = {status: {"model": ErrorBody, "description": text} for status, text in {
    400: "bad request", 401: "not authenticated", 403: "forbidden (CSRF token missing or wrong)",
    404: "not found (or another user's)", 409: "conflict with the current state",
    413: "request body larger than TRADETRAIL_MAX_REQUEST_BYTES",
    422: "invalid input (also: JSON that is malformed, not UTF-8, nested too deep, or holds a NUL character)",
    429: "too many requests", 502: "an outside service (broker, market data) failed",
    503: "busy or not ready"}.items()}


def error_response(status: int, code: str, message: str, *, fields: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": fields or []}}
    return JSONResponse(body, status_code=status, headers=headers)


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type",
              422: "invalid_input", 429: "rate_limited"}


def _field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def allowed_methods(request: Request) -> list[str] | None:
    """The methods the OpenAPI document declares for the path this URL names — a concrete path before a
    templated one, as OpenAPI matches (``/api/strategies/validate`` before ``/api/strategies/{name}``). None
    for a URL outside the document (``/docs``, ``/openapi.json``)."""
    table = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = request.app.state.allow_table = _allow_table(request.app.openapi())
    path = request.scope.get("path", "")
    return next((methods for pattern, methods in table if pattern.fullmatch(path)), None)


def _allow_table(spec: dict) -> list[tuple[re.Pattern, list[str]]]:
    rows = []
    for path, operations in spec.get("paths", {}).items():
        pattern = re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part)
                                     for part in re.split(r"(\{[^}]+\})", path)))
        methods = sorted(m.upper() for m in operations if m.upper() in _HTTP_METHODS)
        rows.append((path.count("{"), len(rows), pattern, methods))
    return [(pattern, methods) for _, _, pattern, methods in sorted(rows, key=lambda r: r[:2])]


_HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}


def install(api: FastAPI) -> None:
    from tradetrail.services.errors import (
        AccountError,
        AlreadyRunning,
        AnalysisFailed,
        Busy,
        ConfigurationError,
        InvalidBacktest,
        InvalidStrategy,
        LoginRefused,
        MarketDataError,
        NotFound,
        PromptExists,
        PromptInUse,
        PromptTemplateError,
        ScheduleError,
        StrategyInUse,
        TooManyAttempts,
        TooManyBacktests,
    )

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        fields = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid")}
                  for e in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "invalid_input", f"invalid input: {summary}", fields=fields)

    @api.exception_handler(HTTPException)  # Starlette's: routing (404, 405) and FastAPI's own both land here
    async def _http(request: Request, exc: HTTPException):
        headers = dict(exc.headers or {})
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else "request refused"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            if allowed is not None:
                headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'see the documentation')}"
        elif exc.status_code == 404 and message == "Not Found":
            message = "no such path"
        return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), message,
                              headers=headers or None)

    simple = {
        NotFound: (404, "not_found"),
        AlreadyRunning: (409, "already_running"), StrategyInUse: (409, "in_use"), PromptInUse: (409, "in_use"),
        PromptExists: (409, "exists"), LoginRefused: (401, "login_failed"),
        PromptTemplateError: (422, "invalid_template"), ScheduleError: (422, "invalid_schedule"),
        AccountError: (422, "invalid_input"), InvalidBacktest: (422, "invalid_backtest"),
        MarketDataError: (502, "market_data_error"),
        AnalysisFailed: (502, "analyst_error"), ConfigurationError: (503, "not_configured"), Busy: (503, "busy"),
    }
    for exc_type, (status, code) in simple.items():
        def handler(_: Request, exc: Exception, status=status, code=code):
            return error_response(status, code, str(exc))
        api.add_exception_handler(exc_type, handler)

    @api.exception_handler(TooManyAttempts)
    @api.exception_handler(TooManyBacktests)
    async def _too_many(_: Request, exc: TooManyAttempts | TooManyBacktests):
        return error_response(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @api.exception_handler(InvalidStrategy)
    async def _invalid_strategy(_: Request, exc: InvalidStrategy):
        fields = [{"field": p.split(":", 1)[0] if ":" in p else "config", "message": p} for p in exc.problems]
        return error_response(422, "invalid_strategy", str(exc), fields=fields)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "internal", "internal error; the server log has the details")
