"""The HTTP face: every capability under ``/api`` (OpenAPI at ``/openapi.json``, docs at ``/docs``), and
the web UI's pages beside it (``tradetrail/web``).

Routes call the same services as the CLI and hold no business logic. Everything but ``/health`` and login
needs an API token or a browser session (see ``api/security.py``); ``/metrics`` as ``TRADETRAIL_METRICS``
says. Every request passes ``api/limits.py`` first (body size, JSON depth, NUL characters), and every API
error has one shape (``api/errors.py``). Every
response carries a strict Content-Security-Policy (``web/headers.py``); ``/docs`` serves Swagger UI from the
package's own static files, so nothing is loaded from the internet.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tradetrail import __version__
from tradetrail.api import errors
from tradetrail.api.deps import AppDep, UserDep
from tradetrail.api.limits import RequestLimits
from tradetrail.api.routes import artifacts, auth, backtests, lineage, metrics, prompts, strategies, symbols, trading
from tradetrail.api.routes.notifications import router as notifications_router
from tradetrail.app_context import App
from tradetrail.observability import logs as log_format
from tradetrail.observability import multiprocess
from tradetrail.runtime.health import health_report
from tradetrail.runtime.startup import PeriodicReconciler, reconcile_all
from tradetrail.services.scheduling.embedded import EmbeddedService
from tradetrail.services.trading.broker_status import start_session_keeper
from tradetrail.web import install as install_web
from tradetrail.web.headers import SecurityHeaders

log = logging.getLogger(__name__)


def create_app(application: App, *, background: bool = True) -> FastAPI:
    """The ASGI app. With ``background``, it reconciles every account at start-up and periodically and, in
    embedded mode, runs the scheduler."""

    @asynccontextmanager
    async def lifespan(api: FastAPI):
        reconciler = scheduler = keeper = None
        if background:
            # Before anything records or starts a process: uvicorn has set its logging up by now, and the
            # helper processes started below inherit the metrics folder from this process's environment.
            log_format.configure(application.settings)
            multiprocess.prepare(application.settings, clean=True)
            keeper = start_session_keeper(application)  # IBKR keep-alive tickle; None for the simulator
            reports = await run_in_threadpool(reconcile_all, application)
            log.info("start-up reconciliation: %s", {k: bool(v.get("position_mismatches")) for k, v in reports.items()})
            reconciler = PeriodicReconciler(application, application.settings.reconcile_interval_s)
            reconciler.start()
            if application.settings.scheduler_enabled and application.settings.executor == "embedded":
                scheduler = EmbeddedService(application)
                scheduler.start()
        api.state.scheduler = scheduler
        yield
        if scheduler is not None:
            await run_in_threadpool(scheduler.stop)
        if reconciler is not None:
            await run_in_threadpool(reconciler.stop)
        if keeper is not None:
            await run_in_threadpool(keeper.stop)

    api = FastAPI(title="tradetrail", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Scheduled, LLM-assisted trading workflows with a replayable trail of every decision. "
                              "Authenticate with `Authorization: Bearer <token>` (`tradetrail tokens create USER`) "
                              "or a session from `POST /api/auth/login`.")
    api.state.app = application
    api.state.scheduler = None
    errors.install(api)
    api.add_middleware(RequestLimits, max_bytes=application.settings.max_request_bytes,
                       max_depth=application.settings.max_json_depth)
    api.add_middleware(SecurityHeaders)  # outermost: refusals and errors carry the headers too

    @api.get("/health", tags=["system"], responses={503: {"description": "a check is not ok (the same report)"}})
    def health() -> JSONResponse:
        """Database, broker session, scheduler and worker queue; 503 when any of them is not ok."""
        report = health_report(application, scheduler=api.state.scheduler)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    system = APIRouter(prefix="/api", tags=["system"], responses=errors.ERROR_RESPONSES)

    @system.get("/broker/status", response_model=dict)
    def broker_status(app: AppDep, user: UserDep) -> dict:
        """The broker session (authenticated, connected, competing), the account, and the adapter's details."""
        from tradetrail.services.trading.broker_status import broker_status as status

        return status(app, user_id=user.user_id)

    for router in (auth.router, symbols.router, strategies.router, prompts.router, lineage.router,
                   artifacts.router, trading.router, backtests.router, system, metrics.router):
        api.include_router(router)
    api.include_router(notifications_router)
    install_web(api)  # the pages, /docs and /static (none of them in the OpenAPI document)
    return api
