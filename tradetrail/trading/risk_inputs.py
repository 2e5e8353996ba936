"""What the risk gate looks at, gathered from the broker and our books just before it decides: all of it
about the one account the strategy trades on (equity, exposure, the day's starting equity, working orders,
the account's trading state), never the user's other accounts. The consecutive losses are the strategy's
round trips on this account (a strategy that trades on one account counts them all, as before).

A backtest session's re-run (an account of ``backtest_sessions``) is decided as the backtest decided it: under
no person's pause or resume (the strategy's and the user's trading states are not read for it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

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


def gather(app, *, user_id: int, strategy_id: int, account: str, symbol: str,
           as_of: datetime) -> tuple[RiskInputs, dict]:
    values = app.broker.account_values(account)
    broker_positions = [p for p in app.broker.positions(account) if p.quantity]
    exposure = gross_exposure(broker_positions)
    with app.Session() as s:
        if _session_rerun(s, account):
            strategy_state, global_state, resumed_at = TradingState.ACTIVE, TradingState.ACTIVE, None
        else:
            strategy_state, global_state, srow = states(s, user_id, strategy_id, account)
            resumed_at = srow.resumed_at if srow else None
        qty = s.scalar(select(Position.quantity).where(Position.account == account, Position.strategy_id == strategy_id,
                                                       Position.symbol == symbol)) or 0.0
        start = s.scalar(select(PortfolioSnapshot.equity).where(PortfolioSnapshot.account == account,
                                                                PortfolioSnapshot.at < day_start(as_of))
                         .order_by(PortfolioSnapshot.at.desc(), PortfolioSnapshot.id.desc()).limit(1))
        start_from = "the last snapshot before today"
        if start is None:  # no earlier day: today's first snapshot is the day's start
            start = s.scalar(select(PortfolioSnapshot.equity).where(PortfolioSnapshot.account == account,
                                                                    PortfolioSnapshot.at >= day_start(as_of))
                             .order_by(PortfolioSnapshot.at, PortfolioSnapshot.id).limit(1))
            start_from = "today's first snapshot"
        q = select(Trade.pnl).where(Trade.account == account, Trade.strategy_id == strategy_id,
                                    Trade.status == "closed")
        if resumed_at is not None:
            q = q.where(Trade.exit_at >= resumed_at)
        recent = s.scalars(q.order_by(Trade.exit_at.desc(), Trade.id.desc()).limit(100)).all()
        open_states = [st.value for st in OPEN]
        open_legs = dict(s.execute(select(Order.leg, func.count(Order.id)).where(
            Order.account == account, Order.strategy_id == strategy_id, Order.symbol == symbol,
            Order.state.in_(open_states)).group_by(Order.leg)).all())
        pending = open_legs.get("entry", 0) + open_legs.get("exit", 0)
        protection = open_legs.get("stop", 0) + open_legs.get("target", 0)
        working_notional, working_symbols = _working_entries(s, account, open_states)
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


def _working_entries(s, account: str, open_states: list[str]) -> tuple[float, set[str]]:
    """Notional and symbols of entry orders not yet filled, account-wide (every strategy's)."""
    entries = s.scalars(select(Order).where(Order.account == account, Order.leg == "entry",
                                            Order.state.in_(open_states))).all()
    notional, symbols = 0.0, set()
    for e in entries:
        price = e.sized_price or e.limit_price  # the price the gate sized it at: the worst fill it tolerates
        if price is None and e.risk_per_unit is not None:  # an older market entry: its stop plus the risk per unit
            stop = s.scalar(select(Order.stop_price).where(Order.parent_client_order_id == e.client_order_id,
                                                           Order.leg == "stop"))
            price = stop + e.risk_per_unit if stop is not None else None
        notional += (e.quantity - e.filled_quantity) * (price or 0.0)
        symbols.add(e.symbol)
    return notional, symbols
