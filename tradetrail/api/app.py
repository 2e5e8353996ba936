"""The HTTP face. Routes arrive with the REST API issue; ``/health`` answers now."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from tradetrail import __version__
from tradetrail.db.migrate import current_revision
from tradetrail.services.app import App
from tradetrail.services.embedded import EmbeddedScheduler
from tradetrail.services.startup import PeriodicReconciler, reconcile_all

log = logging.getLogger(__name__)


def create_app(application: App, *, background: bool = True) -> FastAPI:
    """The ASGI app. With ``background``, it reconciles every account at start-up and periodically."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        reconciler = scheduler = None
        if background:
            reports = await run_in_threadpool(reconcile_all, application)
            log.info("start-up reconciliation: %s", {k: bool(v.get("position_mismatches")) for k, v in reports.items()})
            reconciler = PeriodicReconciler(application, application.settings.reconcile_interval_s)
            reconciler.start()
            if application.settings.scheduler_enabled and application.settings.executor == "embedded":
                scheduler = EmbeddedScheduler(application)
                scheduler.start()
        yield
        if scheduler is not None:
            await run_in_threadpool(scheduler.stop)
        if reconciler is not None:
            await run_in_threadpool(reconciler.stop)

    api = FastAPI(title="tradetrail", version=__version__, lifespan=lifespan)
    api.state.app = application

    @api.get("/health")
    def health() -> JSONResponse:
        checks: dict = {}
        try:
            with application.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = {"ok": True, "revision": current_revision(application.engine),
                                  "backend": application.engine.dialect.name}
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            checks["database"] = {"ok": False, "error": f"{type(exc).__name__}"}
        try:
            h = application.broker.health()
            checks["broker"] = {"ok": h.healthy, **h.to_dict()}
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = {"ok": False, "error": f"{type(exc).__name__}"}
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "version": __version__, "checks": checks},
                            status_code=200 if ok else 503)

    return api
