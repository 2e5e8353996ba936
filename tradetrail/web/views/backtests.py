"""Backtests: the user's list with the form that starts one, and one backtest's page — its progress while
it runs (an htmx fragment polled until it ends), then the report beside buy and hold, the equity and
drawdown chart, the traded bars with each entry and exit, and the trades; a failed one shows why.

The charts read two JSON answers of this module (the curves, and the bars with the trades placed on them),
drawn by ``static/js/backtest_charts.js``; the numbers on the page are the report the API returns.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tradetrail.services.backtests import curves
from tradetrail.services.backtests.queries import get_backtest, list_backtests
from tradetrail.services.backtests.running import MAX_CALLS_LIMIT, MAX_CASH, BacktestRequest, start_backtest
from tradetrail.services.backtests.sessions import rerun_session, trade_sessions
from tradetrail.services.errors import InvalidBacktest, NotFound, TooManyBacktests
from tradetrail.services.strategies.names import strategy_names
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageUser
from tradetrail.web.templating import render, render_text

router = page_router()
PAGE = 50
BacktestId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
FIELDS = ("strategy", "from", "to", "cash", "analyst", "max_calls")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # as the API reads them: no week dates or compact forms

# (report key, label, decimals, unit): the rows of "stats beside buy and hold"
CURVE_ROWS = (
    ("total_return_pct", "Total return", 2, "%"),
    ("cagr_pct", "CAGR", 2, "%"),
    ("max_drawdown_pct", "Max drawdown", 2, "%"),
    ("max_drawdown_value", "Max drawdown (amount)", 2, ""),
    ("max_drawdown_sessions", "Max drawdown length (sessions)", 0, ""),
    ("sharpe", "Sharpe", 2, ""),
    ("sortino", "Sortino", 2, ""),
    ("calmar", "Calmar", 2, ""),
    ("initial_equity", "Initial equity", 2, ""),
    ("final_equity", "Final equity", 2, ""),
)
TRADE_ROWS = (
    ("trades", "Closed trades", 0, ""),
    ("open_trades", "Open at the end", 0, ""),
    ("win_rate_pct", "Win rate", 1, "%"),
    ("profit_factor", "Profit factor", 2, ""),
    ("average_r", "Average R", 2, ""),
    ("expectancy", "Expectancy (per trade)", 2, ""),
    ("best_trade", "Best trade", 2, ""),
    ("worst_trade", "Worst trade", 2, ""),
    ("average_holding_sessions", "Average holding (sessions)", 1, ""),
    ("time_in_market_pct", "Time in market", 1, "%"),
    ("total_commission", "Commission", 2, ""),
)


def _form_values(query: dict[str, str | None]) -> dict[str, str]:
    return {name: (query.get(name) or "").strip()[:100] for name in FIELDS}


def _parse(values: dict[str, str]) -> tuple[BacktestRequest | None, dict[str, str]]:
    """The request the form asks for, or what is wrong with each field (by its name)."""
    errors: dict[str, str] = {}
    strategy = values["strategy"]
    if not strategy:
        errors["strategy"] = "choose one of your strategies"
    days: dict[str, date] = {}
    for name in ("from", "to"):
        try:
            if not ISO_DATE.fullmatch(values[name]):
                raise ValueError(values[name])
            days[name] = date.fromisoformat(values[name])
        except ValueError:
            errors[name] = "a date written YYYY-MM-DD"
    cash = None
    if values["cash"]:
        try:
            cash = float(values["cash"].replace(",", ""))
        except ValueError:
            cash = math.nan
        if not (math.isfinite(cash) and 0 < cash <= MAX_CASH):
            errors["cash"] = f"a positive amount up to {MAX_CASH:g}, or empty for the default"
    mode = values["analyst"] or "cached"
    if mode not in ("cached", "model"):
        errors["analyst"] = "cached answers only, or ask the model"
    max_calls = None
    if values["max_calls"]:
        if mode != "model":
            errors["max_calls"] = "only when asking the model"
        elif not values["max_calls"].isdigit() or not 1 <= int(values["max_calls"]) <= MAX_CALLS_LIMIT:
            errors["max_calls"] = f"a whole number from 1 to {MAX_CALLS_LIMIT}, or empty for the default"
        else:
            max_calls = int(values["max_calls"])
    if errors:
        return None, errors
    return BacktestRequest(strategy, days["from"], days["to"], cash, analyst="model" if mode == "model" else None,
                           max_calls=max_calls), {}


def _list_page(request: Request, user, *, offset: int = 0, values: dict[str, str] | None = None,
               errors: dict[str, str] | None = None, status: int = 200) -> Response:
    app = request.app.state.app
    rows = list_backtests(app, user.user_id, limit=PAGE + 1, offset=offset)
    names = sorted(strategy_names(app, user.user_id).values())
    return render(request, "backtests.html", status_code=status, rows=rows[:PAGE], more=len(rows) > PAGE,
                  offset=offset, page=PAGE, query={}, strategies=names,
                  values=values or _form_values({}), errors=errors or {})


@router.get("/backtests")
def backtests(request: Request, user: PageUser, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
              strategy: Annotated[str | None, Query(max_length=100)] = None,
              start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
              end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
              cash: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """The list, newest first, and the form (pre-filled from the query: the strategy page links here)."""
    values = _form_values({"strategy": strategy, "from": start, "to": end, "cash": cash})
    return _list_page(request, user, offset=offset, values=values)


@router.post("/backtests")
def start(request: Request, user: ChangingUser, form: Form) -> Response:
    """Start the backtest in the background and open its page (progress first, then the report)."""
    app = request.app.state.app
    values = _form_values(form)
    backtest, errors = _parse(values)
    status = 422
    if backtest is not None:
        try:
            backtest_id = start_backtest(app, user.user_id, backtest)
            return RedirectResponse(f"/backtests/{backtest_id}", status_code=303)
        except InvalidBacktest as exc:
            errors = {"backtest": str(exc)}
        except NotFound as exc:  # not one of the user's strategies (or deleted since the form was shown)
            errors = {"strategy": str(exc)}
        except TooManyBacktests as exc:
            errors, status = {"backtest": str(exc)}, 429
    return _list_page(request, user, values=values, errors=errors, status=status)


@router.get("/backtests/{backtest_id}")
def backtest_page(request: Request, backtest_id: BacktestId, user: PageUser) -> Response:
    app = request.app.state.app
    found = get_backtest(app, user.user_id, backtest_id)
    report = found.get("report") or {}
    why = trade_sessions(app, user.user_id, backtest_id, report.get("trades") or []) if report else None
    return render(request, "backtest.html", b=found, report=report, why=why,
                  curve_rows=CURVE_ROWS, trade_rows=TRADE_ROWS)


@router.post("/backtests/{backtest_id}/sessions/{session}/rerun")
def rerun(request: Request, backtest_id: BacktestId, session: date, user: ChangingUser, form: Form) -> Response:
    """Re-run the session through the 13 steps (or find its earlier re-run) and open its lineage."""
    execution_id = rerun_session(request.app.state.app, user.user_id, backtest_id, session)
    return RedirectResponse(f"/executions/{execution_id}", status_code=303)


@router.get("/backtests/{backtest_id}/progress")
def progress(request: Request, backtest_id: BacktestId, user: PageUser) -> Response:
    """The progress fragment htmx polls; once the backtest has ended, the page reloads to show its result."""
    found = get_backtest(request.app.state.app, user.user_id, backtest_id)
    headers = {"Cache-Control": "no-store"}
    if found["status"] not in ("queued", "running"):
        headers["HX-Refresh"] = "true"
    return HTMLResponse(render_text("partials/backtest_progress.html", b=found), headers=headers)


@router.get("/backtests/{backtest_id}/curves.json")
def curves_json(request: Request, backtest_id: BacktestId, user: PageUser) -> Response:
    """Equity, buy and hold and both drawdowns per session, for the equity chart."""
    data = curves.equity_curves(request.app.state.app, user.user_id, backtest_id)
    return JSONResponse(data, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/backtests/{backtest_id}/bars.json")
def bars_json(request: Request, backtest_id: BacktestId, user: PageUser) -> Response:
    """The bars the backtest ran over and its trades placed on them, for the candle chart."""
    data = curves.trade_bars(request.app.state.app, user.user_id, backtest_id)
    return JSONResponse(data, headers={"Cache-Control": "private, max-age=3600"})
