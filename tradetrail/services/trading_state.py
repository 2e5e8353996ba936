"""Trading states (ACTIVE / REDUCING / HALTED), account-wide (``global``) and per strategy.

Resuming a strategy (back to ACTIVE) also restarts its count of consecutive losses, which is how a pause
after N losing trades is lifted: by a person, on purpose.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradetrail.db.trading_models import TradingStateRow
from tradetrail.db.types import utcnow
from tradetrail.domain.risk import TradingState

GLOBAL = "global"


def scope_for(strategy_id: int | None) -> str:
    return GLOBAL if strategy_id is None else f"strategy:{strategy_id}"


def get_state(app, user_id: int, scope: str) -> tuple[TradingState, TradingStateRow | None]:
    with app.Session() as s:
        row = s.scalar(select(TradingStateRow).where(TradingStateRow.user_id == user_id,
                                                     TradingStateRow.scope == scope))
    return (TradingState(row.state) if row else TradingState.ACTIVE), row


def states(s: Session, user_id: int, strategy_id: int) -> tuple[TradingState, TradingState, TradingStateRow | None]:
    """(strategy state, global state, the strategy's row) in one query."""
    scope = scope_for(strategy_id)
    rows = {r.scope: r for r in s.scalars(select(TradingStateRow).where(
        TradingStateRow.user_id == user_id, TradingStateRow.scope.in_((scope, GLOBAL))))}
    def state(key: str) -> TradingState:
        return TradingState(rows[key].state) if key in rows else TradingState.ACTIVE
    return state(scope), state(GLOBAL), rows.get(scope)


def set_state(app, user_id: int, scope: str, state: TradingState, reason: str = "") -> dict:
    with app.Session() as s:
        row = s.scalar(select(TradingStateRow).where(TradingStateRow.user_id == user_id,
                                                     TradingStateRow.scope == scope))
        if row is None:
            row = TradingStateRow(user_id=user_id, scope=scope, state=state.value)
            s.add(row)
        row.state, row.reason, row.changed_at = state.value, reason, utcnow()
        if state == TradingState.ACTIVE:
            row.resumed_at = row.changed_at
        s.commit()
        return {"scope": scope, "state": row.state, "reason": row.reason, "changed_at": row.changed_at.isoformat()}


def list_states(app, user_id: int) -> list[dict]:
    """The account-wide state first (ACTIVE when never set), then every strategy's own."""
    with app.Session() as s:
        rows = s.scalars(select(TradingStateRow).where(TradingStateRow.user_id == user_id)
                         .order_by(TradingStateRow.scope)).all()
        out = [{"scope": r.scope, "state": r.state, "reason": r.reason,
                "changed_at": r.changed_at.isoformat() if r.changed_at else None} for r in rows]
    out.sort(key=lambda r: r["scope"] != GLOBAL)
    if not out or out[0]["scope"] != GLOBAL:
        out.insert(0, {"scope": GLOBAL, "state": TradingState.ACTIVE.value, "reason": None, "changed_at": None})
    return out
