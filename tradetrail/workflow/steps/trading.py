"""The trading steps: risk_check, place_order, track_order, update_portfolio.

risk_check picks the strategy's account (a replay-clock strategy's own simulated account, else the one the
user's real-clock strategies share), lets the broker catch up to the as-of time and pulls its fills into our
books, so the gate sees the account as it is (a fill far from the price its order was sized at is flagged in
this step's metadata and on the order). The gate sizes an entry from the price it will trade at: a MKT entry
from the last close of the run's bars plus ``orders.slippage_allowance_pct``, a LMT entry from its limit;
never from the analyst's entry for a market order. A denial is a recorded outcome, not a failure.
place_order re-checks an entry under the account's submission lock (another strategy on the account may
have sent one since risk_check) and persists the intent before sending; it fails the step on a rejection, a declined
confirmation or an ambiguous outcome (the orders stay UNKNOWN for reconciliation). A SELL closes the
strategy's position: its working protective orders are cancelled first, and the exit is sent only once
the broker confirms that.
"""

from __future__ import annotations

import time as time_

from sqlalchemy import bindparam, select

from tradetrail.db.trading_models import Order, Position
from tradetrail.domain.market_hours import EXCHANGE_TZ, session_close
from tradetrail.domain.orders import Leg, OrderSpec, OrderState, OrderType, Side, client_order_id
from tradetrail.domain.risk import RiskDecision, TradingState
from tradetrail.notify import outbox
from tradetrail.trading import portfolio
from tradetrail.trading.decisions import EntryPlan, entry_orders, entry_plan, exit_orders, risk_decision
from tradetrail.trading.locks import submission_lock
from tradetrail.trading.orders import save_intents, send, send_locked
from tradetrail.trading.reconcile import sync_account
from tradetrail.trading.risk_inputs import gather
from tradetrail.trading.trading_accounts import strategy_account
from tradetrail.trading.trading_state import scope_for, set_state
from tradetrail.workflow.context import RunContext, StepError, StepOutcome


def risk_check(ctx: RunContext) -> StepOutcome:
    app, sig = ctx.app, ctx.signal
    if ctx.account is None:  # else the harness running the steps chose it (a backtest session's re-run)
        ctx.account = strategy_account(app, ctx.user_id, ctx.strategy_id, ctx.config)
    app.broker.sync(ctx.account, ctx.as_of, (ctx.contract,))
    synced = sync_account(app, ctx.user_id, ctx.account)
    inputs, info = gather(app, user_id=ctx.user_id, strategy_id=ctx.strategy_id, account=ctx.account,
                          symbol=ctx.contract.symbol, as_of=ctx.as_of)
    bars = ctx.bars.get("daily")
    last = float(bars["close"].iloc[-1]) if bars is not None and len(bars) else None
    plan = entry_plan(ctx.config, sig, last)
    levels, price = plan.levels, plan.price
    ctx.levels, ctx.entry_price, ctx.paper = levels, price, info["paper"]
    ctx.step_input.update(signal={"action": sig.action, "entry": sig.entry, "stop_loss": sig.stop_loss,
                                  "take_profit": sig.take_profit}, levels_on_tick=levels, entry_price=price,
                          limits=ctx.config.risk, inputs=inputs, **info)
    ctx.risk = risk_decision(ctx.config, sig, plan, inputs)
    ctx.step_meta["synced"] = synced
    if not ctx.risk.approved and ctx.risk.action != "none":
        _notify_denial(ctx, ctx.risk)
    return StepOutcome(output=ctx.risk.to_dict())


PAUSES = {"consecutive_losses", "daily_loss_limit"}  # the gate pausing the strategy: a trading state to hear of


def _notify_denial(ctx: RunContext, decision: RiskDecision) -> None:
    """One outbox row for a denied BUY or SELL (its own small transaction: a denial writes nothing else), once
    per strategy, signal, rules and exchange day: a strategy run every few minutes into the same cap says so
    once that day, not at every run. None from a backtest's session re-run or a replay."""
    if outbox.quiet(ctx.trigger):
        return
    rules = {d.rule for d in decision.denials}
    numbers = "; ".join(f"{d.rule}: {d.detail}" for d in decision.denials) or decision.reason
    if rules & PAUSES:
        kind, text = "trading_state", f"Strategy {ctx.strategy_name} paused by the risk gate: {numbers}"
    else:
        kind = "risk_denied"
        text = f"Risk gate denied {ctx.signal.action} {ctx.contract.symbol} (strategy {ctx.strategy_name}): {numbers}"
    day = ctx.as_of.astimezone(EXCHANGE_TZ).date().isoformat()
    key = f"denied:{ctx.strategy_id}:{ctx.signal.action}:{day}:{','.join(sorted(rules)) or 'reason'}"
    with ctx.app.engine.begin() as conn:
        outbox.event_conn(conn, ctx.user_id, kind, text, f"/executions/{ctx.execution_id}", dedupe_key=key)


def _live_guard(ctx: RunContext) -> None:
    """Orders on a live account need live mode and the global switch. Whether the account is paper comes
    from risk_check's read of it in this run (an account does not change kind), else from the broker."""
    paper = ctx.paper if ctx.paper is not None else ctx.app.broker.account_values(ctx.account).paper
    if paper:
        return
    if ctx.config.mode != "live" or not ctx.app.settings.allow_live_trading:
        raise StepError(f"account {ctx.account} is live: orders need the strategy in live mode "
                        f"(it is {ctx.config.mode}) and TRADETRAIL_ALLOW_LIVE_TRADING=true "
                        f"(it is {str(ctx.app.settings.allow_live_trading).lower()})")


def _cancel_protection(ctx: RunContext) -> tuple[list[dict], float]:
    """Cancel the strategy's working stop/target orders on this instrument, confirm with the broker, and
    return what they were and the position still held afterwards (a leg may have filled meanwhile)."""
    app = ctx.app
    with app.Session() as s:
        working = s.scalars(select(Order).where(
            Order.account == ctx.account, Order.strategy_id == ctx.strategy_id, Order.symbol == ctx.contract.symbol,
            Order.leg.in_((Leg.STOP.value, Leg.TARGET.value)),
            Order.state.in_((OrderState.SUBMITTED.value, OrderState.PARTIALLY_FILLED.value)))).all()
    legs = [{"client_order_id": o.client_order_id, "leg": o.leg, "quantity": o.quantity,
             "stop_price": o.stop_price, "limit_price": o.limit_price} for o in working]
    for order in working:
        app.broker.cancel(order.account, order.broker_order_id)
    # A broker may accept a cancel before it happens (IBKR: "Request was submitted"): poll to a deadline.
    deadline = time_.monotonic() + app.settings.ibkr_cancel_wait_s
    while True:
        synced = sync_account(app, ctx.user_id, ctx.account)
        ctx.step_meta.setdefault("price_deviations", []).extend(synced["price_deviations"])
        with app.Session() as s:
            states = {o.client_order_id: o.state for o in s.scalars(select(Order).where(
                Order.id.in_([w.id for w in working])))}
            held = s.scalar(select(Position.quantity).where(
                Position.account == ctx.account, Position.strategy_id == ctx.strategy_id,
                Position.symbol == ctx.contract.symbol)) or 0.0
        still = [c for c, st in states.items() if st not in (OrderState.CANCELLED.value, OrderState.FILLED.value)]
        if not still or time_.monotonic() >= deadline:
            break
        time_.sleep(min(1.0, max(0.0, deadline - time_.monotonic())))
    if still:
        raise StepError(f"protective orders not yet cancelled at the broker ({', '.join(still)}); the exit was not "
                        "sent, to avoid selling twice")
    for leg in legs:
        leg["state"] = states[leg["client_order_id"]]
    return legs, float(held)


def _restore_stop(ctx: RunContext, legs: list[dict], quantity: float) -> str:
    """After a failed exit, protect the position again with a stop at the cancelled stop's price."""
    stops = [leg for leg in legs if leg["leg"] == Leg.STOP.value and leg["stop_price"]]
    if not stops or quantity <= 0:
        return "no stop to restore"
    spec = OrderSpec(client_order_id(ctx.execution_id + ":restore", Leg.STOP), Leg.STOP, Side.SELL, OrderType.STP,
                     quantity, stop_price=stops[0]["stop_price"], tif="GTC")
    rows = save_intents(ctx.app, user_id=ctx.user_id, strategy_id=ctx.strategy_id, execution_id=ctx.execution_id,
                        account=ctx.account, contract=ctx.contract, specs=[spec])
    outcome = send(ctx.app, rows)
    if outcome.status != "accepted":  # unprotected: no new entries until a person has looked
        set_state(ctx.app, ctx.user_id, scope_for(ctx.strategy_id), TradingState.REDUCING,
                  f"exit failed and the protective stop could not be restored: {outcome.reason}")
        return f"protective stop NOT restored ({outcome.status} {outcome.reason}); strategy set to REDUCING"
    return f"protective stop restored at {spec.stop_price:g}"


def place_order(ctx: RunContext) -> StepOutcome:
    decision = ctx.risk
    ctx.step_input.update(decision={"action": decision.action, "approved": decision.approved,
                                    "quantity": decision.quantity}, account=ctx.account)
    if not decision.approved:
        return StepOutcome(output={"reason": f"nothing to send: {decision.reason}"}, status="skipped")
    _live_guard(ctx)
    if decision.action == "enter":
        return _enter(ctx, decision)
    return _exit(ctx)


def _recheck(ctx: RunContext, decision: RiskDecision) -> RiskDecision:
    """The gate again, on the account as it is now, by a caller holding the account's submission lock.

    risk_check decides without that lock: two strategies on one account can both pass a cap that only one of
    them fits. Whatever was sent since is a working entry now and counts; the smaller answer wins."""
    inputs, _ = gather(ctx.app, user_id=ctx.user_id, strategy_id=ctx.strategy_id, account=ctx.account,
                       symbol=ctx.contract.symbol, as_of=ctx.as_of)
    again = risk_decision(ctx.config, ctx.signal, _plan(ctx), inputs)
    if again.approved and again.quantity >= decision.quantity:
        return decision
    return again


def _plan(ctx: RunContext) -> EntryPlan:
    """risk_check's plan as it left it on the context (its levels could be put on the tick, or it denied)."""
    return EntryPlan(ctx.levels, ctx.entry_price, None)


def _enter(ctx: RunContext, decision: RiskDecision) -> StepOutcome:
    cfg = ctx.config
    with submission_lock(ctx.app, ctx.account):
        final = _recheck(ctx, decision)
        recheck = None if final is decision else final.to_dict()
        if not final.approved:
            return StepOutcome(output={"reason": f"denied when re-checked before sending (the account changed "
                                                 f"since risk_check): {final.reason}", "recheck": recheck},
                               status="skipped")
        lv, numbers = ctx.levels, final.numbers
        # 1 R at the expected price; an entry without protective orders has no stop, so no R to measure by
        r_unit = None if lv["stop_loss"] is None else numbers["reference_price"] - lv["stop_loss"]
        specs = entry_orders(cfg, ctx.execution_id, final, _plan(ctx))
        orders = save_intents(ctx.app, user_id=ctx.user_id, strategy_id=ctx.strategy_id,
                              execution_id=ctx.execution_id, account=ctx.account, contract=ctx.contract, specs=specs,
                              risk_per_unit=r_unit,
                              sized_price=numbers["sizing_price"],
                              price_allowance_pct=cfg.orders.slippage_allowance_pct)
        outcome = send_locked(ctx.app, [o.id for o in orders])
    ctx.sent = [o.client_order_id for o in orders]
    out = {"status": outcome.status, "reason": outcome.reason, "orders": outcome.states,
           "questions": outcome.questions, "cancelled_protection": []}
    if recheck is not None:
        out["recheck"] = recheck
    if outcome.status != "accepted":
        raise StepError(f"order {outcome.status}: {outcome.reason}", output=out)
    return StepOutcome(output=out)


def _exit(ctx: RunContext) -> StepOutcome:
    cancelled, held = _cancel_protection(ctx)
    if held <= 0 or any(leg["state"] == OrderState.FILLED.value for leg in cancelled):
        return StepOutcome(output={"reason": "a protective order filled meanwhile: the position is already "
                                             "closed, no exit sent", "cancelled_protection": cancelled,
                                   "position": held}, status="skipped")
    specs = exit_orders(ctx.execution_id, held)  # what is held now, not what the gate saw
    orders = save_intents(ctx.app, user_id=ctx.user_id, strategy_id=ctx.strategy_id, execution_id=ctx.execution_id,
                          account=ctx.account, contract=ctx.contract, specs=specs)
    outcome = send(ctx.app, orders)
    ctx.sent = [o.client_order_id for o in orders]
    out = {"status": outcome.status, "reason": outcome.reason, "orders": outcome.states,
           "questions": outcome.questions, "cancelled_protection": cancelled}
    if outcome.status != "accepted":
        message = f"order {outcome.status}: {outcome.reason}"
        if outcome.status in ("rejected", "declined"):
            out["restored"] = _restore_stop(ctx, cancelled, held)
            message += f"; {out['restored']}"
        raise StepError(message, output=out)
    return StepOutcome(output=out)


_O = Order.__table__
_RUN_ORDERS = (select(_O.c.client_order_id, _O.c.leg, _O.c.state, _O.c.broker_order_id, _O.c.filled_quantity,
                      _O.c.avg_fill_price).where(_O.c.execution_id == bindparam("execution")).order_by(_O.c.id))


def track_order(ctx: RunContext) -> StepOutcome:
    """One sync with the broker for the orders this run sent. Orders still working are followed by later
    runs (risk_check syncs first) and by the periodic reconciliation; a run that sent nothing is skipped."""
    app = ctx.app
    ctx.step_input["account"] = ctx.account
    if not ctx.sent:
        return StepOutcome(output={"reason": "this run sent no order"}, status="skipped")
    app.broker.sync(ctx.account, ctx.as_of, (ctx.contract,))
    synced = sync_account(app, ctx.user_id, ctx.account)
    with app.Session() as s:
        mine = s.execute(_RUN_ORDERS, {"execution": ctx.execution_id}).all()
        orders = [{"client_order_id": o.client_order_id, "leg": o.leg, "state": o.state,
                   "broker_order_id": o.broker_order_id, "filled": o.filled_quantity, "avg_price": o.avg_fill_price}
                  for o in mine]
    return StepOutcome(output={"orders": orders, "fills": synced["fills"], "adopted": synced["adopted"],
                               "notes": synced["notes"], "price_deviations": synced["price_deviations"]})


def update_portfolio(ctx: RunContext) -> StepOutcome:
    app = ctx.app
    ctx.step_input["account"] = ctx.account
    now, daily = portfolio.snapshot_run(app, ctx.user_id, ctx.account, ctx.as_of, ctx.execution_id,
                                        session_close(ctx.as_of))
    ctx.step_meta["daily_snapshot"] = daily
    return StepOutcome(output=now)
