"""Trading states (ACTIVE / REDUCING / HALTED): for all of a user's accounts (``global``), one account
(``account:<account>``, e.g. set to REDUCING when reconciliation finds its positions differ from the broker's)
and one strategy. A strategy trades under the strictest of its own state, its account's and the global one.

Resuming a strategy (back to ACTIVE) also restarts its count of consecutive losses, which is how a pause
after N losing trades is lifted: by a person, on purpose.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tradetrail.db.trading_models import TradingStateRow
from tradetrail.db.types import utcnow
from tradetrail.domain.risk import TradingState
from tradetrail.domain.trading_states import strictest
from tradetrail.notify import outbox

GLOBAL = "global"


def scope_for(strategy_id: int | None) -> str:
    return GLOBAL if strategy_id is None else f"strategy:{strategy_id}"


def account_scope(account: str) -> str:
    return f"account:{account}"


def get_state(app, user_id: int, scope: str) -> tuple[TradingState, TradingStateRow | None]:
    with app.Session() as s:
        row = s.scalar(select(TradingStateRow).where(TradingStateRow.user_id == user_id,
                                                     TradingStateRow.scope == scope))
    return (TradingState(row.state) if row else TradingState.ACTIVE), row


_T = TradingStateRow.__table__
_STATES = select(_T.c.scope, _T.c.state, _T.c.resumed_at).where(  # built once: the risk gate asks twice a run
    _T.c.user_id == bindparam("user"), _T.c.scope.in_(bindparam("scopes", expanding=True)))


def states(s: Session, user_id: int, strategy_id: int,
           account: str | None = None) -> tuple[TradingState, TradingState, datetime | None]:
    """(strategy state, the stricter of the global and the account's state, when the strategy was last
    resumed) in one query."""
    scope = scope_for(strategy_id)
    wide = [GLOBAL] + ([account_scope(account)] if account else [])
    rows = {r.scope: r for r in s.execute(_STATES, {"user": user_id, "scopes": [scope, *wide]})}
    def state(key: str) -> TradingState:
        return TradingState(rows[key].state) if key in rows else TradingState.ACTIVE
    return state(scope), strictest(*(state(k) for k in wide)), rows[scope].resumed_at if scope in rows else None


def set_state(app, user_id: int, scope: str, state: TradingState, reason: str = "") -> dict:
    with app.Session() as s:
        row = s.scalar(select(TradingStateRow).where(TradingStateRow.user_id == user_id,
                                                     TradingStateRow.scope == scope))
        if row is None:
            row = TradingStateRow(user_id=user_id, scope=scope, state=TradingState.ACTIVE.value)
            s.add(row)
        if row.state != state.value:
            outbox.event(s, user_id, "trading_state", f"Trading state: {scope} is now {state.value}"
                         + (f": {reason}" if reason else ""), "/portfolio")
        row.state, row.reason, row.changed_at = state.value, reason, utcnow()
        if state == TradingState.ACTIVE:
            row.resumed_at = row.changed_at
        s.commit()
        return {"scope": scope, "state": row.state, "reason": row.reason, "changed_at": row.changed_at.isoformat()}


def list_states(app, user_id: int) -> list[dict]:
    """The global state first (ACTIVE when never set), then every account's and strategy's own."""
    with app.Session() as s:
        rows = s.scalars(select(TradingStateRow).where(TradingStateRow.user_id == user_id)
                         .order_by(TradingStateRow.scope)).all()
        out = [{"scope": r.scope, "state": r.state, "reason": r.reason,
                "changed_at": r.changed_at.isoformat() if r.changed_at else None} for r in rows]
    out.sort(key=lambda r: r["scope"] != GLOBAL)
    if not out or out[0]["scope"] != GLOBAL:
        out.insert(0, {"scope": GLOBAL, "state": TradingState.ACTIVE.value, "reason": None, "changed_at": None})
    return out
