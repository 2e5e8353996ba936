"""What the risk gate looks at, gathered from the broker and our books just before it decides: all of it
about the one account the strategy trades on (equity, exposure, the day's starting equity, working orders,
the account's trading state), never the user's other accounts. The consecutive losses are the strategy's
round trips on this account (a strategy that trades on one account counts them all, as before).

A backtest session's re-run (an account of ``backtest_sessions``) is decided as the backtest decided it: under
no person's pause or resume (the strategy's and the user's trading states are not read for it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select

from tradetrail.db.backtest_models import SESSION_ACCOUNT_PREFIX, BacktestSession
from tradetrail.db.trading_models import Order, PortfolioSnapshot, Position, Trade
from tradetrail.domain.commissions import per_unit_and_minimum
from tradetrail.domain.market_hours import exchange_day_start
from tradetrail.domain.orders import OPEN
from tradetrail.domain.positions import exposure as gross_exposure
from tradetrail.domain.risk import RiskInputs, TradingState
from tradetrail.domain.stats import consecutive_losses
from tradetrail.trading.trading_state import states

day_start = exchange_day_start


# Built once: these run twice per entry (risk_check, and again under the submission lock), and building a
# statement costs more CPU than SQLite takes to answer it. Table columns: plain rows, no ORM objects.
_P, _S, _T, _O = Position.__table__, PortfolioSnapshot.__table__, Trade.__table__, Order.__table__
_HELD = select(_P.c.quantity).where(_P.c.account == bindparam("account"), _P.c.strategy_id == bindparam("strategy"),
                                    _P.c.symbol == bindparam("symbol"))
_START_BEFORE = (select(_S.c.equity).where(_S.c.account == bindparam("account"), _S.c.at < bindparam("day"))
                 .order_by(_S.c.at.desc(), _S.c.id.desc()).limit(1))
_START_TODAY = (select(_S.c.equity).where(_S.c.account == bindparam("account"), _S.c.at >= bindparam("day"))
                .order_by(_S.c.at, _S.c.id).limit(1))
_RECENT = select(_T.c.pnl).where(_T.c.account == bindparam("account"), _T.c.strategy_id == bindparam("strategy"),
                                 _T.c.status == "closed")  # the strategy's trades on the account the gate protects
_RECENT_ALL = _RECENT.order_by(_T.c.exit_at.desc(), _T.c.id.desc()).limit(100)
_RECENT_SINCE = (_RECENT.where(_T.c.exit_at >= bindparam("resumed")).order_by(_T.c.exit_at.desc(), _T.c.id.desc())
                 .limit(100))
_OPEN_STATES = sorted(st.value for st in OPEN)
_OPEN_LEGS = (select(_O.c.leg, func.count(_O.c.id)).where(
    _O.c.account == bindparam("account"), _O.c.strategy_id == bindparam("strategy"), _O.c.symbol == bindparam("symbol"),
    _O.c.state.in_(_OPEN_STATES)).group_by(_O.c.leg))
_WORKING_ENTRIES = select(_O.c.client_order_id, _O.c.symbol, _O.c.quantity, _O.c.filled_quantity, _O.c.sized_price,
                          _O.c.limit_price, _O.c.risk_per_unit).where(
    _O.c.account == bindparam("account"), _O.c.leg == "entry", _O.c.state.in_(_OPEN_STATES))
_STOP_OF = select(_O.c.stop_price).where(_O.c.parent_client_order_id == bindparam("parent"), _O.c.leg == "stop")


def gather(app, *, user_id: int, strategy_id: int, account: str, symbol: str,
           as_of: datetime) -> tuple[RiskInputs, dict]:
    values, positions = app.broker.account_state(account)
    broker_positions = [p for p in positions if p.quantity]
    exposure = gross_exposure(broker_positions)
    keys = {"account": account, "strategy": strategy_id, "symbol": symbol, "day": day_start(as_of)}
    with app.Session() as s:
        if _session_rerun(s, account):  # a backtest session's re-run decides as the backtest did: no state
            strategy_state, global_state, resumed_at = TradingState.ACTIVE, TradingState.ACTIVE, None
        else:
            strategy_state, global_state, resumed_at = states(s, user_id, strategy_id, account)
        qty = s.scalar(_HELD, keys) or 0.0
        start = s.scalar(_START_BEFORE, keys)
        start_from = "the last snapshot before today"
        if start is None:  # no earlier day: today's first snapshot is the day's start
            start = s.scalar(_START_TODAY, keys)
            start_from = "today's first snapshot"
        recent = s.scalars(_RECENT_ALL if resumed_at is None else _RECENT_SINCE, keys | {"resumed": resumed_at}).all()
        open_legs = dict(s.execute(_OPEN_LEGS, keys).all())
        pending = open_legs.get("entry", 0) + open_legs.get("exit", 0)
        protection = open_legs.get("stop", 0) + open_legs.get("target", 0)
        working_notional, working_symbols = _working_entries(s, account)
    held = {p.symbol for p in broker_positions}
    exposure += working_notional  # an entry still working will be a position: count it before it fills
    losses = consecutive_losses(recent)
    per_unit, minimum = per_unit_and_minimum(app.settings.sim_commission) if getattr(app.broker, "simulated", False) \
        else (0.0, 0.0)
    inputs = RiskInputs(equity=values.equity, cash=values.cash - working_notional, exposure=exposure,
                        open_positions=len(held | working_symbols), position_qty=float(qty),
                        day_start_equity=start if start is not None else values.equity,
                        consecutive_losses=losses, strategy_state=strategy_state, global_state=global_state,
                        commission_per_unit=per_unit, min_commission=minimum, pending_orders=pending,
                        open_protection=protection)
    return inputs, {"account": account, "paper": values.paper, "working_entries_notional": round(working_notional, 2),
                    "day_start_equity_from": start_from if start is not None else "current equity (no snapshot yet)"}


def _session_rerun(s, account: str) -> bool:
    return account.startswith(SESSION_ACCOUNT_PREFIX) and s.scalar(
        select(BacktestSession.id).where(BacktestSession.account == account)) is not None


def _working_entries(s, account: str) -> tuple[float, set[str]]:
    """Notional and symbols of entry orders not yet filled, account-wide (every strategy's)."""
    notional, symbols = 0.0, set()
    for e in s.execute(_WORKING_ENTRIES, {"account": account}):
        price = e.sized_price or e.limit_price  # the price the gate sized it at: the worst fill it tolerates
        if price is None and e.risk_per_unit is not None:  # an older market entry: its stop plus the risk per unit
            stop = s.scalar(_STOP_OF, {"parent": e.client_order_id})
            price = stop + e.risk_per_unit if stop is not None else None
        notional += (e.quantity - e.filled_quantity) * (price or 0.0)
        symbols.add(e.symbol)
    return notional, symbols
