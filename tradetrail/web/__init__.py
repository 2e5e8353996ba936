"""The trader's face: server-rendered pages (Jinja2 + htmx) over the same services as the API.

Like ``api/``, it holds no rules and no queries: every view calls ``tradetrail.services``. How to add a page
is in ``docs/web.md``: a module in ``web/views/`` with a ``router``, listed in ``VIEWS`` below, and a nav
entry in ``web/templating.py``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tradetrail.web import assets
from tradetrail.web.views import (
    backtests,
    broker,
    dashboard,
    docs,
    executions,
    login,
    orders,
    portfolio,
    prompts,
    settings,
    strategies,
    symbols,
)

log = logging.getLogger(__name__)

VIEWS = (login, dashboard, strategies, executions, backtests, orders, portfolio, symbols, prompts, broker, settings,
         docs)


def install(api: FastAPI) -> None:
    """Mount the static files and every page on the API's app (pages stay out of the OpenAPI document)."""
    absent = assets.missing()
    if absent:
        log.warning("web UI assets missing (%s, ...): run `make install` (npm ci + asset build); pages will be "
                    "unstyled and charts will not draw", absent[0])
    api.mount("/static", StaticFiles(directory=assets.WEB / "static", check_dir=True), name="static")
    for view in VIEWS:
        api.include_router(view.router)
