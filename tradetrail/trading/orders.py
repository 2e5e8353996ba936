"""The order manager: the only code that sends orders.

1. The intent (every leg, with its deterministic client order id) is saved before anything is sent.
2. One submission at a time per account (:mod:`tradetrail.trading.locks`).
3. Confirmation questions are answered yes only when every message id is on the allow-list
   (``TRADETRAIL_IBKR_ALLOWED_QUESTIONS``); otherwise the submission is declined and the question recorded.
4. An ambiguous outcome (timeout, 5xx, connection lost, "already registered") leaves the orders UNKNOWN.
   Nothing resends them: reconciliation asks the broker, and only an intent the broker provably does not
   have may be sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Row, bindparam, insert, select

from tradetrail.broker.port import PlaceResult
from tradetrail.db.trading_models import Order, OrderEvent
from tradetrail.domain.contract import Contract
from tradetrail.domain.errors import NotFound
from tradetrail.domain.orders import Leg, OrderSpec, OrderState, OrderType, Side
from tradetrail.drills import crash_point
from tradetrail.trading.books import StaleOrder, move_rows
from tradetrail.trading.locks import submission_lock

MAX_QUESTIONS = 20
DUPLICATE_MARKER = "already registered"
STALE_RETRIES = 3  # reads again when a sync moved an order between our read and our write


@dataclass(frozen=True)
class SendOutcome:
    status: str  # accepted | rejected | declined | ambiguous | skipped
    reason: str
    states: dict[str, str]
    questions: list[dict]


# Built once (each entry runs them): building a statement costs more CPU than SQLite takes to answer it. The
# order manager writes with Core: the ORM's unit of work inserted the legs and their events one row at a time
# and cost several times the statements themselves (issue #12).
_O, _OE = Order.__table__, OrderEvent.__table__
_BY_COIDS = select(_O).where(_O.c.client_order_id.in_(bindparam("coids", expanding=True))).order_by(_O.c.id)
_BY_IDS = select(_O).where(_O.c.id.in_(bindparam("ids", expanding=True))).order_by(_O.c.id)
_BY_IDS_FOR_UPDATE = _BY_IDS.with_for_update()
_INSERT_LEGS = insert(_O).returning(*_O.c, sort_by_parameter_order=True)  # rows back in the order given
_INSERT_EVENTS = insert(_OE)


def save_intents(app, *, user_id: int, strategy_id: int | None, execution_id: str | None, account: str,
                 contract: Contract, specs: list[OrderSpec], risk_per_unit: float | None = None,
                 sized_price: float | None = None, price_allowance_pct: float | None = None) -> list[Row]:
    """Persist the legs as NEW orders; a second call for the same client order ids returns the saved ones.
    Returns rows of the orders table, by id (the entry first).

    ``sized_price`` and ``price_allowance_pct`` (the price the gate sized the entry at and the slippage
    allowance) go on the entry leg, so a fill outside the allowance can be flagged when it is booked."""
    if not specs:
        return []
    with app.engine.begin() as conn:
        existing = conn.execute(_BY_COIDS, {"coids": [o.client_order_id for o in specs]}).all()
        if existing:
            return list(existing)
        legs = [dict(user_id=user_id, strategy_id=strategy_id, execution_id=execution_id, broker=app.broker.name,
                     account=account, client_order_id=spec.client_order_id,
                     parent_client_order_id=spec.parent_client_order_id, leg=spec.leg.value,
                     symbol=contract.symbol, conid=contract.conid, source=contract.source, side=spec.side.value,
                     order_type=spec.order_type.value, quantity=spec.quantity, limit_price=spec.limit_price,
                     stop_price=spec.stop_price, tif=spec.tif, state=OrderState.NEW.value, broker_order_id=None,
                     filled_quantity=0.0, avg_fill_price=None, reason=None, external=False,
                     risk_per_unit=risk_per_unit if spec.leg == Leg.ENTRY else None,
                     sized_price=sized_price if spec.leg == Leg.ENTRY else None,
                     price_allowance_pct=price_allowance_pct if spec.leg == Leg.ENTRY else None)
                for spec in specs]
        rows = conn.execute(_INSERT_LEGS, legs).all()
        conn.execute(_INSERT_EVENTS, [dict(order_id=row.id, from_state=None, to_state=OrderState.NEW.value,
                                           detail="intent saved") for row in rows])
    crash_point("after_intent_saved")
    return list(rows)


def spec_of(order: Order) -> OrderSpec:
    return OrderSpec(order.client_order_id, Leg(order.leg), Side(order.side), OrderType(order.order_type),
                     order.quantity, limit_price=order.limit_price, stop_price=order.stop_price, tif=order.tif,
                     parent_client_order_id=order.parent_client_order_id)


def contract_of(order: Order) -> Contract:
    return Contract(source=order.source or "", symbol=order.symbol, name=order.symbol, conid=order.conid)


def _answer_questions(app, account: str, result: PlaceResult, asked: list[dict]) -> PlaceResult:
    allowed = app.settings.allowed_questions
    for _ in range(MAX_QUESTIONS):
        if result.status != "needs_confirmation":
            return result
        question = result.questions[0]
        ok = bool(question.message_ids) and set(question.message_ids) <= allowed
        asked.append({"reply_id": question.reply_id, "message_ids": list(question.message_ids),
                      "text": question.text, "answered": "yes" if ok else "no"})
        try:
            answer = app.broker.reply(account, question.reply_id, ok)
        except Exception as exc:  # noqa: BLE001 - a failed reply is ambiguous: the order may have gone live
            return PlaceResult("ambiguous", reason=f"reply failed: {type(exc).__name__}: {exc}")
        if not ok:
            return PlaceResult("declined", reason=f"confirmation {','.join(question.message_ids) or '?'} is not on "
                                                  f"the allow-list: {question.text}")
        result = answer
    return PlaceResult("ambiguous", reason=f"more than {MAX_QUESTIONS} confirmation questions")


def send(app, orders: list[Order]) -> SendOutcome:
    """Send NEW orders (one order or one bracket) once; record exactly what the broker said."""
    with submission_lock(app, orders[0].account):
        return send_locked(app, [o.id for o in orders])


def send_locked(app, ids: list[int]) -> SendOutcome:
    """:func:`send` for a caller that already holds the account's submission lock."""
    def submitting(conn: Connection) -> SendOutcome | None:
        rows = conn.execute(_BY_IDS, {"ids": ids}).all()
        if any(r.state != OrderState.NEW for r in rows):
            return SendOutcome("skipped", "not all legs are NEW (already sent)", {r.client_order_id: r.state
                                                                                  for r in rows}, [])
        move_rows(conn, [(r, OrderState.SUBMITTING, "sending to the broker", {}) for r in rows])
        sending.extend(rows)
        return None

    sending: list[Row] = []
    skipped = _in_transaction(app, submitting)
    if skipped is not None:
        return skipped
    account, contract, specs = sending[0].account, contract_of(sending[0]), [spec_of(r) for r in sending]
    asked: list[dict] = []
    try:
        result = app.broker.place(account, contract, specs)
    except Exception as exc:  # noqa: BLE001 - the broker may or may not have it: ambiguous, never retried
        result = PlaceResult("ambiguous", reason=f"{type(exc).__name__}: {exc}")
    if result.status == "accepted":
        crash_point("after_broker_accepted")
    result = _answer_questions(app, account, result, asked)
    crash_point("before_status_stored")

    def answered(conn: Connection) -> SendOutcome:  # FOR UPDATE: a concurrent sync cannot slip in (PostgreSQL)
        rows = conn.execute(_BY_IDS_FOR_UPDATE, {"ids": ids}).all()
        status = result.status
        if status == "rejected" and DUPLICATE_MARKER in result.reason:
            status = "ambiguous"  # the broker holds an order with this id; reconciliation finds out which
        moves = []
        for r in rows:
            if r.state != OrderState.SUBMITTING:  # someone (a sync) settled it meanwhile: keep theirs
                moves.append((r, r.state, f"late broker answer '{result.status}' {result.reason}".rstrip(), {}))
            elif status == "accepted":
                broker_id = result.broker_order_ids.get(r.client_order_id)
                moves.append((r, OrderState.SUBMITTED, f"accepted as broker order {broker_id}",
                              {"broker_order_id": broker_id}))
            elif status == "rejected":
                moves.append((r, OrderState.REJECTED, result.reason, {"reason": result.reason}))
            elif status == "declined":
                moves.append((r, OrderState.CANCELLED, result.reason, {"reason": result.reason}))
            else:
                moves.append((r, OrderState.UNKNOWN, f"ambiguous outcome, reconcile before anything is resent: "
                                                     f"{result.reason}", {"reason": result.reason}))
        states = move_rows(conn, moves)
        return SendOutcome(status, result.reason, {r.client_order_id: states[r.id] for r in rows}, asked)

    return _in_transaction(app, answered)


def _in_transaction(app, write: Callable[[Connection], SendOutcome | None]) -> SendOutcome | None:
    """Run ``write`` in a transaction, again from a fresh read when an order changed between its read and its
    write (a sync committed meanwhile: :class:`StaleOrder`); a few times at most, then the error stands."""
    for attempt in range(STALE_RETRIES):
        try:
            with app.engine.begin() as conn:
                return write(conn)
        except StaleOrder:
            if attempt == STALE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def cancel(app, order_id: int, *, user_id: int | None = None) -> str:
    """Ask the broker to cancel one working order; the state changes when the broker reports it."""
    with app.Session() as s:
        order = s.get(Order, order_id)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise NotFound(f"no order {order_id}")
        if order.state not in (OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED) or not order.broker_order_id:
            raise ValueError(f"order {order_id} is {order.state}; only working orders can be cancelled")
        ok = app.broker.cancel(order.account, order.broker_order_id)
        s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=order.state,
                         detail="cancel requested" if ok else "cancel refused by the broker"))
        s.commit()
        return "requested" if ok else "refused"
