"""``/``: what a trader checks first — money per account, recent runs and their signals, what runs next (in
the exchange's time), the broker connection, and the trading state with Halt / Exits only / Resume."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from tradetrail.domain.risk import TradingState
from tradetrail.services.runs import search as execution_search
from tradetrail.services.strategies import configs as strategies
from tradetrail.services.strategies.names import strategy_names
from tradetrail.services.trading import overview as account_overview
from tradetrail.services.trading.broker_status import broker_status
from tradetrail.trading import portfolio, trading_state
from tradetrail.trading.trading_accounts import find_account
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageError, PageUser, safe_next
from tradetrail.web.templating import render

router = page_router()
RECENT = 10
NEXT_RUNS = 3
SCHEDULED = 50  # strategies listed with their next runs (the executions page filters by any of them)
STATE_ACTIONS = {"halt": TradingState.HALTED, "reducing": TradingState.REDUCING, "resume": TradingState.ACTIVE}


def _schedule(app, user_id: int) -> list[dict]:
    rows = []
    for strategy in strategies.list_strategies(app, user_id, limit=SCHEDULED + 1):
        upcoming = strategies.next_runs(app, user_id, strategy["name"], NEXT_RUNS) \
            if strategy["enabled"] and strategy["cron"] else None
        rows.append({**strategy, "next": upcoming})
    return rows


def _states(app, user_id: int, names: dict[int, str]) -> list[dict]:
    """The global state first, then each account's and strategy's own, named as a person knows them."""
    out = []
    for row in trading_state.list_states(app, user_id):
        kind, _, key = row["scope"].partition(":")
        out.append({**row, "strategy": names.get(int(key)) if kind == "strategy" and key.isdigit() else None,
                    "account": key if kind == "account" else None})
    return out


def _accounts(app, user_id: int) -> list[dict]:
    """Every account's portfolio as the API shows it (``/api/portfolio``), with its day and total P&L from
    the stored snapshots."""
    pnl = {row["account"]: row for row in account_overview.accounts(app, user_id)}
    return [{**account, "pnl": pnl.get(account["account"])}
            for account in portfolio.accounts(app, user_id)]


@router.get("/")
def dashboard(request: Request, user: PageUser) -> Response:
    app = request.app.state.app
    schedule = _schedule(app, user.user_id)
    names = strategy_names(app, user.user_id)
    return render(request, "dashboard.html", accounts=_accounts(app, user.user_id),
                  more_strategies=len(schedule) > SCHEDULED,
                  recent=execution_search.search(app, user.user_id, limit=RECENT), schedule=schedule[:SCHEDULED],
                  broker=broker_status(app, user_id=user.user_id), states=_states(app, user.user_id, names))


@router.post("/trading-state")
def change_trading_state(request: Request, user: ChangingUser, form: Form) -> Response:
    """Halt, exits only, or resume — everything, one account or one strategy; then back to where it came from."""
    app = request.app.state.app
    state = STATE_ACTIONS.get(form.get("action", ""))
    if state is None:
        raise PageError(400, "Unknown action", "the trading state action must be halt, reducing or resume")
    name, account = form.get("strategy") or None, form.get("account") or None
    if account is not None:
        scope = trading_state.account_scope(find_account(app, user.user_id, account)["account"])
    else:
        scope = trading_state.scope_for(strategies.strategy_detail(app, user.user_id, name)["id"] if name else None)
    reason = " ".join(form.get("reason", "").split())[:500] or f"set from the web UI by {user.username}"
    trading_state.set_state(app, user.user_id, scope, state, reason)
    return RedirectResponse(safe_next(form.get("next")), status_code=303)
