"""Keeping our books equal to the broker's.

``sync_account`` (every run, and the track_order step): broker order statuses and fills into our orders,
positions and trades; broker orders we do not know are adopted as *external*; entries filled outside the
price band they were sized for are listed as ``price_deviations`` (and recorded on the order).
``reconcile`` (start-up, on demand, periodically): sync, then settle every order whose fate we do not know
(NEW, SUBMITTING, UNKNOWN) by asking the broker for its client order id — found: adopt what the broker
says; provably absent: send again if the intent is recent, otherwise cancel it with the reason — and flag
any position that differs from the broker's (that account goes REDUCING). Per account; ``reconcile`` and
``reconcile_user`` go over every account of a user (at one broker, at all).
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import bindparam, func, or_, select

from tradetrail.broker.port import BrokerError, BrokerOrder, OrderStatusUnknown
from tradetrail.db.trading_models import Fill, Order, OrderEvent, Position, Reconciliation, TradingStateRow
from tradetrail.db.types import utcnow
from tradetrail.domain.orders import OPEN, InvalidTransition, OrderState
from tradetrail.domain.risk import TradingState
from tradetrail.domain.trading_states import after_mismatch, allows
from tradetrail.marketdata.port import MarketDataError
from tradetrail.notify import outbox
from tradetrail.trading.books import charge_late_commission, fill_deviation, last_fill_time, move, record_fill
from tradetrail.trading.locks import process_lock, submission_lock
from tradetrail.trading.orders import send_locked
from tradetrail.trading.trading_accounts import find_account, shared_account, user_accounts
from tradetrail.trading.trading_state import GLOBAL, account_scope, scope_for

UNSETTLED = (OrderState.NEW.value, OrderState.SUBMITTING.value, OrderState.UNKNOWN.value)


def _adopt(s, user_id: int, account: str, bo: BrokerOrder, broker_name: str) -> Order:
    row = Order(user_id=user_id, strategy_id=None, execution_id=None, broker=broker_name, account=account,
                client_order_id=bo.client_order_id or f"ext-{broker_name}-{bo.broker_order_id}"[:40],
                parent_client_order_id=bo.parent_client_order_id, leg="external", symbol=bo.symbol, conid=None,
                source=None, side=bo.side, order_type=bo.order_type, quantity=bo.quantity,
                limit_price=bo.limit_price, stop_price=bo.stop_price, tif="", state=OrderState.SUBMITTED.value,
                broker_order_id=bo.broker_order_id, external=True, reason="adopted: placed outside tradetrail")
    s.add(row)
    s.flush()
    s.add(OrderEvent(order_id=row.id, from_state=None, to_state=row.state, detail="adopted from the broker"))
    return row


def _apply_status(s, order: Order, bo: BrokerOrder, notes: list[str]) -> None:
    try:
        _apply_status_strict(s, order, bo, notes)
    except InvalidTransition as exc:  # the broker's word wins; the trail says what happened
        s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=bo.status,
                         detail=f"CORRECTION: the broker reports {bo.status} ({exc})"))
        order.state, order.reason = bo.status, f"corrected from {order.state}: {bo.reason or bo.status}"
        outbox.order_event(s, order, bo.status, f"corrected: the broker reports {bo.status}")
        notes.append(f"{order.client_order_id}: corrected to {bo.status} as the broker reports")


def _apply_status_strict(s, order: Order, bo: BrokerOrder, notes: list[str]) -> None:
    if order.broker_order_id is None:
        order.broker_order_id = bo.broker_order_id
    if bo.status in (OrderState.CANCELLED, OrderState.REJECTED) and order.state != bo.status:
        order.reason = bo.reason or order.reason
        move(s, order, bo.status, f"broker reports {bo.status}: {bo.reason}".rstrip(": "))
    elif bo.status in (OrderState.SUBMITTED,) and order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        order.reason = None  # whatever made it ambiguous is settled now; the events keep the history
        move(s, order, OrderState.SUBMITTED, "the broker has it")
        notes.append(f"{order.client_order_id}: found at the broker, now SUBMITTED")
    elif bo.status in (OrderState.FILLED, OrderState.PARTIALLY_FILLED) and order.state in (
            OrderState.SUBMITTING, OrderState.UNKNOWN):
        move(s, order, OrderState.SUBMITTED, "the broker has it (fills follow)")
        notes.append(f"{order.client_order_id}: found at the broker with fills")


FILL_LOOKBACK = timedelta(days=7)


def _is_child(local: dict, by_broker_id: dict, fill) -> bool:
    order = local.get(fill.client_order_id) if fill.client_order_id else by_broker_id.get(fill.broker_order_id)
    return bool(order is not None and order.parent_client_order_id)


_REFERRED = select(Order).where(Order.account == bindparam("account"), or_(  # built once: every sync asks
    Order.client_order_id.in_(bindparam("coids", expanding=True)),
    Order.broker_order_id.in_(bindparam("broker_ids", expanding=True))))
_KNOWN_EXECS = select(Fill.exec_id, Fill.commission).where(Fill.exec_id.in_(bindparam("execs", expanding=True)))
_UNCHARGED = select(Fill).where(Fill.exec_id.in_(bindparam("execs", expanding=True)), Fill.commission == 0)


def _local_orders(s, account: str, broker_orders: list[BrokerOrder], fills: list) -> tuple[dict, dict]:
    """Our orders that the broker's orders and fills refer to, by client order id and by broker order id."""
    coids = {bo.client_order_id for bo in broker_orders if bo.client_order_id}
    coids |= {f.client_order_id for f in fills if f.client_order_id}
    broker_ids = {bo.broker_order_id for bo in broker_orders} | {f.broker_order_id for f in fills}
    rows = s.scalars(_REFERRED, {"account": account, "coids": sorted(coids), "broker_ids": sorted(broker_ids)}
                     ).all() if coids or broker_ids else []
    return {o.client_order_id: o for o in rows}, {o.broker_order_id: o for o in rows if o.broker_order_id}


_O = Order.__table__
_WORKING = select(_O.c.client_order_id).where(  # built once: every run asks (twice when it sends)
    _O.c.account == bindparam("account"),
    _O.c.state.in_((OrderState.SUBMITTED.value, OrderState.PARTIALLY_FILLED.value)))


def sync_account(app, user_id: int, account: str) -> dict:
    """Pull statuses and fills from the broker into our books, one sync per account at a time."""
    with process_lock(app, f"sync:{account}", blocking=True):
        return _sync_account(app, user_id, account)


def _sync_account(app, user_id: int, account: str) -> dict:
    """Pull statuses and fills from the broker into our books. Returns what changed.

    Only what the broker reports now is looked at (its recent orders, fills since a week before our last
    recorded one), so the cost follows the activity, not the history; an open order of ours missing from the
    broker's recent list is looked up by its id, and if the broker filled more than the recent fills show,
    all fills are fetched."""
    broker_orders = app.broker.orders(account)
    notes: list[str] = []
    adopted, new_fills, deviations = [], [], []
    with app.Session() as s:
        reported = {bo.client_order_id for bo in broker_orders if bo.client_order_id}
        for coid in s.scalars(_WORKING, {"account": account}):
            if coid not in reported:  # finished too long ago for the broker's recent list
                try:
                    bo = app.broker.order(account, coid)
                except OrderStatusUnknown as exc:  # the broker cannot tell now: look again next time
                    notes.append(f"{coid}: the broker cannot tell its status now ({exc})")
                    continue
                if bo is not None:
                    broker_orders.append(bo)
        last = last_fill_time(s, account)
        fills = app.broker.fills(account, since=last - FILL_LOOKBACK if last else None)
        local, by_broker_id = _local_orders(s, account, broker_orders, fills)
        fetched = {f.exec_id for f in fills}
        behind = [bo for bo in broker_orders if bo.client_order_id in local and bo.filled_quantity
                  > local[bo.client_order_id].filled_quantity + 1e-9]
        if behind and last is not None and any(
                sum(f.quantity for f in fills if f.client_order_id == bo.client_order_id) < bo.filled_quantity - 1e-9
                for bo in behind):  # e.g. an instrument whose clock is behind the others': fetch all
            fills = app.broker.fills(account)
            local, by_broker_id = _local_orders(s, account, broker_orders, fills)
            notes.append(f"fetched all fills: {len(fills) - len(fetched)} older than the recent window")
        # Book in time order, a parent's fill before its children's (brokers do not promise any order).
        fills = sorted(fills, key=lambda f: (f.time, _is_child(local, by_broker_id, f), f.exec_id))
        known_execs = dict(s.execute(_KNOWN_EXECS, {"execs": [f.exec_id for f in fills]}).all()) if fills else {}
        for bo in broker_orders:
            order = local.get(bo.client_order_id) if bo.client_order_id else by_broker_id.get(bo.broker_order_id)
            if order is None:
                order = _adopt(s, user_id, account, bo, app.broker.name)
                local[order.client_order_id] = order
                by_broker_id[bo.broker_order_id] = order
                adopted.append(order.client_order_id)
                continue
            if order.state in OPEN:
                _apply_status(s, order, bo, notes)
        late = [f for f in fills if known_execs.get(f.exec_id, None) == 0 and f.commission
                and math.isfinite(f.commission)]
        uncharged = {row.exec_id: row for row in s.scalars(
            _UNCHARGED, {"execs": [f.exec_id for f in late]})} if late else {}
        for fill in fills:
            if fill.exec_id in known_execs:
                if (booked := uncharged.pop(fill.exec_id, None)) is not None:  # the order it was booked to
                    note = charge_late_commission(s, s.get(Order, booked.order_id), booked, fill.commission)
                    if note:
                        notes.append(note)
                continue
            order = local.get(fill.client_order_id) if fill.client_order_id else by_broker_id.get(fill.broker_order_id)
            if order is None:
                notes.append(f"fill {fill.exec_id} for an order we cannot find ({fill.broker_order_id})")
                continue
            if order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                move(s, order, OrderState.SUBMITTED, "the broker filled it")
            if record_fill(s, order, fill):
                new_fills.append({"exec_id": fill.exec_id, "client_order_id": order.client_order_id,
                                  "side": fill.side, "quantity": fill.quantity, "price": fill.price,
                                  "commission": fill.commission, "time": fill.time.isoformat()})
                deviation = fill_deviation(order, fill.price)
                if deviation is not None:
                    deviations.append({**deviation, "exec_id": fill.exec_id, "quantity": fill.quantity})
        s.commit()
    return {"adopted": adopted, "fills": new_fills, "notes": notes, "price_deviations": deviations}


def _settle_unsettled(app, user_id: int, account: str, notes: list[str]) -> list[str]:
    """Decide the fate of NEW / SUBMITTING / UNKNOWN legs. Runs under the account's submission lock, so no
    send is in flight, and asks the broker about every such leg by its client order id."""
    window = timedelta(seconds=app.settings.order_resubmit_window_s)
    to_send: list[list[int]] = []
    with app.Session() as s:
        unsettled = s.scalars(select(Order).where(Order.account == account, Order.state.in_(UNSETTLED))).all()
        keys = sorted({o.parent_client_order_id or o.client_order_id for o in unsettled})
        for key in keys:
            legs = s.scalars(select(Order).where(Order.account == account, or_(
                Order.client_order_id == key, Order.parent_client_order_id == key)).order_by(Order.id)).all()
            open_legs = [leg for leg in legs if leg.state in UNSETTLED]
            try:
                found = {leg.client_order_id: app.broker.order(account, leg.client_order_id) for leg in open_legs}
            except OrderStatusUnknown as exc:  # never read "cannot tell" as "absent": nothing is resent
                for leg in open_legs:
                    if leg.state == OrderState.SUBMITTING:
                        move(s, leg, OrderState.UNKNOWN, f"the broker cannot tell whether it has it yet: {exc}")
                notes.append(f"{key}: left {'/'.join(sorted({leg.state for leg in open_legs}))}: the broker cannot "
                             f"tell whether it has these orders ({exc})")
                continue
            for leg in open_legs:
                if found[leg.client_order_id] is not None:
                    _apply_status(s, leg, found[leg.client_order_id], notes)
            missing = [leg for leg in open_legs if found[leg.client_order_id] is None]
            if not missing:
                continue
            if len(missing) < len(legs):  # part of a bracket reached the broker, part did not
                for leg in missing:
                    leg.reason = ("never reached the broker although other legs of its bracket did: the position "
                                  "may lack protection; check it by hand")
                    move(s, leg, OrderState.CANCELLED, leg.reason)
                if legs[0].strategy_id is not None:
                    _reduce(s, user_id, scope_for(legs[0].strategy_id), f"bracket {key} is incomplete at the broker")
                notes.append(f"{key}: ATTENTION {', '.join(m.client_order_id for m in missing)} never reached the "
                             f"broker while the rest of the bracket did; cancelled here, strategy set to REDUCING")
                continue
            blocked = _blocked_by_state(s, legs[0])
            if blocked:
                for leg in missing:
                    leg.reason = f"never reached the broker; not sent again because {blocked}"
                    move(s, leg, OrderState.CANCELLED, leg.reason)
                notes.append(f"{key}: never reached the broker; cancelled because {blocked}")
                continue
            if utcnow() - min(leg.created_at for leg in legs) <= window:
                for leg in missing:
                    move(s, leg, OrderState.NEW, "reconciliation: the broker has no order with this id, safe to "
                                                 "send again")
                to_send.append([leg.id for leg in legs])
            else:
                for leg in missing:
                    leg.reason = "never reached the broker and is too old to send now"
                    move(s, leg, OrderState.CANCELLED, leg.reason)
                notes.append(f"{key}: never reached the broker; cancelled as too old to send")
        s.commit()
    resent = []
    for ids in to_send:
        outcome = send_locked(app, ids)
        with app.Session() as s:
            key = s.get(Order, ids[0]).client_order_id
        resent.append(key)
        notes.append(f"{key}: the broker never had it; sent again: {outcome.status} {outcome.reason}".rstrip())
    return resent


def _blocked_by_state(s, order: Order) -> str | None:
    """Why an intent may not be sent now (HALTED; or REDUCING for anything but an exit), else None."""
    scopes = [GLOBAL, account_scope(order.account)] + \
        ([scope_for(order.strategy_id)] if order.strategy_id is not None else [])
    for row in s.scalars(select(TradingStateRow).where(TradingStateRow.user_id == order.user_id,
                                                       TradingStateRow.scope.in_(scopes))):
        if not allows(row.state, exit=order.leg == "exit"):
            return f"trading is {row.state} ({row.scope})"
    return None


def _reduce(s, user_id: int, scope: str, reason: str) -> None:
    """Set REDUCING (unless already HALTED) for ``scope`` inside the caller's transaction."""
    row = s.scalar(select(TradingStateRow).where(TradingStateRow.user_id == user_id, TradingStateRow.scope == scope))
    if row is None:
        row = TradingStateRow(user_id=user_id, scope=scope, state=TradingState.REDUCING.value)
        s.add(row)
    if after_mismatch(row.state) == TradingState.REDUCING:
        if row.state != TradingState.REDUCING.value:
            outbox.event(s, user_id, "trading_state", f"Trading state: {scope} is now REDUCING (exits only): {reason}",
                         "/portfolio")
        row.state, row.reason, row.changed_at = TradingState.REDUCING.value, reason, utcnow()


def _position_mismatches(app, account: str) -> list[dict]:
    with app.Session() as s:
        ours = dict(s.execute(select(Position.symbol, func.sum(Position.quantity)).where(
            Position.account == account).group_by(Position.symbol)).all())
    theirs = {p.symbol: p.quantity for p in app.broker.positions(account)}
    out = []
    for symbol in sorted(set(ours) | set(theirs)):
        a, b = float(ours.get(symbol) or 0.0), float(theirs.get(symbol) or 0.0)
        if abs(a - b) > 1e-9:
            out.append({"account": account, "symbol": symbol, "ours": a, "broker": b})
    return out


def reconcile(app, user_id: int, account: str | None = None) -> dict:
    """Reconcile one account at ``app.broker`` (its report), or with no ``account`` every account of the user
    there (the shared one and replay-clock strategies' own): their reports under ``accounts``, their lists
    merged on top (a position mismatch names its account)."""
    if account is not None:
        return reconcile_account(app, user_id, account)
    shared_account(app, user_id)
    return _merged([reconcile_account(app, user_id, row["account"]) for row in user_accounts(app, user_id)
                    if row["broker"] == app.broker.name])


def reconcile_account(app, user_id: int, account: str) -> dict:
    """Sync, settle unsettled orders, compare positions of one account at ``app.broker``; store and return the
    report. Positions that differ set that account to REDUCING."""
    first = sync_account(app, user_id, account)
    notes = list(first["notes"])
    with submission_lock(app, account):
        resent = _settle_unsettled(app, user_id, account, notes)
    second = sync_account(app, user_id, account)  # fills of what settling found or sent
    mismatches = _position_mismatches(app, account)
    if mismatches:  # our books and the broker's differ: no new entries there until a person has looked
        with app.Session() as s:
            differ = ", ".join(f"{m['symbol']} ours {m['ours']:g} broker {m['broker']:g}" for m in mismatches)
            _reduce(s, user_id, account_scope(account), "positions differ from the broker's: " + differ)
            outbox.event(s, user_id, "reconcile_mismatch", f"Reconciliation of {account}: positions differ from "
                         f"the broker's: {differ}", "/broker")
            s.commit()
    report = {"account": account, "adopted": first["adopted"] + second["adopted"],
              "fills": first["fills"] + second["fills"], "resent": resent, "notes": notes + second["notes"],
              "position_mismatches": mismatches,
              "price_deviations": first["price_deviations"] + second["price_deviations"]}
    with app.Session() as s:
        s.add(Reconciliation(account=account, ok=not mismatches, report=report))
        s.commit()
    return report


REPORT_LISTS = ("adopted", "fills", "resent", "notes", "position_mismatches", "price_deviations")


def _merged(reports: list[dict]) -> dict:
    merged: dict = {"accounts": reports}
    for key in REPORT_LISTS:
        merged[key] = [item for r in reports for item in r.get(key, [])]
    merged["notes"] += [f"{r['account']}: not reconciled: {r['error']}" for r in reports if "error" in r]
    return merged


def reconcile_user(app, user_id: int, account: str | None = None) -> dict:
    """Reconcile one of the user's accounts (``NotFound`` if not theirs; its report), or every one of them at
    every broker they use (``accounts``: each report, or the error that stopped it: one broker being down does
    not stop the others; the lists merged on top)."""
    if account is not None:
        row = find_account(app, user_id, account)
        return reconcile_account(app.with_broker(row["broker"]), user_id, account)
    shared_account(app, user_id)
    reports = []
    for row in user_accounts(app, user_id):
        try:
            reports.append(reconcile_account(app.with_broker(row["broker"]), user_id, row["account"]))
        except (BrokerError, MarketDataError) as exc:
            reports.append({"account": row["account"], "broker": row["broker"],
                            "error": f"{type(exc).__name__}: {exc}"})
    return _merged(reports)
