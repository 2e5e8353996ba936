"""One JSON error shape for every failure: ``{"error": {"code", "message", "fields"}}``.

Service exceptions map to status codes here, so routes stay thin and bad input never becomes a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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
    404: "not found (or another user's)", 409: "conflict with the current state", 422: "invalid input",
    429: "too many requests", 502: "an outside service (broker, market data) failed",
    503: "busy or not ready"}.items()}


def error_response(status: int, code: str, message: str, *, fields: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": fields or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def install(api: FastAPI) -> None:
    from tradetrail.analyst.port import AnalysisFailed
    from tradetrail.domain.schedule import ScheduleError
    from tradetrail.marketdata.port import MarketDataError
    from tradetrail.prompts.templates import PromptTemplateError
    from tradetrail.services.accounts import AccountError
    from tradetrail.services.app import ConfigurationError
    from tradetrail.services.executions import AlreadyRunning
    from tradetrail.services.prompts import PromptInUse
    from tradetrail.services.run_now import Busy
    from tradetrail.services.strategies import InvalidStrategy, NotFound, StrategyInUse

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        fields = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid")}
                  for e in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "invalid_input", f"invalid input: {summary}", fields=fields)

    @api.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    simple = {
        NotFound: (404, "not_found"),
        AlreadyRunning: (409, "already_running"), StrategyInUse: (409, "in_use"), PromptInUse: (409, "in_use"),
        PromptTemplateError: (422, "invalid_template"), ScheduleError: (422, "invalid_schedule"),
        AccountError: (422, "invalid_input"), MarketDataError: (502, "market_data_error"),
        AnalysisFailed: (502, "analyst_error"), ConfigurationError: (503, "not_configured"), Busy: (503, "busy"),
    }
    for exc_type, (status, code) in simple.items():
        def handler(_: Request, exc: Exception, status=status, code=code):
            return error_response(status, code, str(exc))
        api.add_exception_handler(exc_type, handler)

    @api.exception_handler(InvalidStrategy)
    async def _invalid_strategy(_: Request, exc: InvalidStrategy):
        fields = [{"field": p.split(":", 1)[0] if ":" in p else "config", "message": p} for p in exc.problems]
        return error_response(422, "invalid_strategy", str(exc), fields=fields)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "internal", "internal error; the server log has the details")
