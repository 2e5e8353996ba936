"""Writing events to the outbox, inside the caller's transaction: one INSERT per event, no query.

The engine (trading/, workflow/) calls these where the thing reported is committed, so an event exists
exactly when its cause does. Texts are short and human; ``link`` is the page that explains the event
(relative: the sender puts ``TRADETRAIL_NOTIFY_BASE_URL`` in front).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Boolean, String, bindparam, cast, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tradetrail.db.backtest_models import SESSION_ACCOUNT_PREFIX
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore
from tradetrail.domain.market_hours import EXCHANGE_TZ

# Every kind a channel may subscribe to (``--events``); "*" means all of them.
KINDS = ("execution_failed", "signal", "risk_denied", "order_sent", "order_filled", "order_cancelled",
         "order_rejected", "order_unknown", "position_closed", "trading_state", "broker_unhealthy",
         "reconcile_mismatch", "daily_summary", "slot_missed")
ORDER_KINDS = {"SUBMITTED": "order_sent", "FILLED": "order_filled", "CANCELLED": "order_cancelled",
               "REJECTED": "order_rejected", "UNKNOWN": "order_unknown"}
MAX_TEXT = 1500
MAX_KEY = 120  # the dedupe_key column's width
# Runs that are not trading: a backtest, a backtest session re-run and a replay write no event (their
# signals, orders and failures are the user's to look at, not news).
QUIET_TRIGGERS = ("backtest", "backtest-session", "replay")


def quiet(trigger: str | None) -> bool:
    """Whether a run of this trigger is kept out of the outbox."""
    return trigger in QUIET_TRIGGERS


def simulated_account(account: str | None) -> bool:
    """A backtest session re-run's own account: its orders and positions are not news either."""
    return bool(account) and account.startswith(SESSION_ACCOUNT_PREFIX)


def row(user_id: int, kind: str, text: str, link: str) -> dict:
    """The outbox row of one event (its text and link cut to their columns), for a Core insert."""
    return dict(user_id=user_id, kind=kind, text=text[:MAX_TEXT], link=link[:300], fanned_out=False,
                created_at=utcnow())


def event(s: Session, user_id: int, kind: str, text: str, link: str, dedupe_key: str | None = None) -> None:
    """Add one event to the session's unit of work (written by its next flush, committed with it)."""
    s.add(NotifyEvent(**row(user_id, kind, text, link), dedupe_key=dedupe_key))


_T = NotifyEvent.__table__
_INSERT = insert(_T)


def event_conn(conn, user_id: int, kind: str, text: str, link: str, dedupe_key: str | None = None) -> None:
    """:func:`event` on a Core connection inside its transaction; with ``dedupe_key``, nothing when an event
    of that key exists already (one message for what repeats, e.g. a denial run after run)."""
    values = row(user_id, kind, text, link)
    if dedupe_key is None:
        conn.execute(_INSERT, values)
    else:
        insert_ignore(conn, _T, {**values, "dedupe_key": fit_key(dedupe_key)}, key=["dedupe_key"])


def fit_key(key: str) -> str:
    """``key`` itself when it fits the column, else its SHA-256 (hex): cutting it would make two long keys
    that differ only past the cut one event."""
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def order_notice(order, state: str, detail: str) -> tuple[str, str, str] | None:
    """The (kind, text, link) of an order reaching ``state``, or None when a trader does not hear of it.

    ``order`` is an ORM order or a row of the orders table (the same attribute names)."""
    kind = ORDER_KINDS.get(state)
    if kind is None or simulated_account(order.account):
        return None  # a backtest session re-run's order
    if kind == "order_sent" and order.parent_client_order_id:
        return None  # a bracket is sent as one: its entry says so, its stop and target are heard of when they act
    verb = {"order_sent": "sent", "order_filled": "FILLED", "order_cancelled": "cancelled",
            "order_rejected": "REJECTED", "order_unknown": "of UNKNOWN fate (reconciliation will ask the broker)"}[kind]
    qty = f"{order.quantity:g}"
    price = f" @ {order.avg_fill_price:g}" if kind == "order_filled" and order.avg_fill_price else ""
    text = f"Order {verb}: {order.side} {qty} {order.symbol}{price} ({order.leg}, {order.account})"
    if detail and kind != "order_filled":
        text += f": {detail}"
    return kind, text, f"/orders/{order.id}"


def order_event(s: Session, order, state: str, detail: str) -> None:
    """An order reached a state a trader hears about (sent, filled, cancelled, rejected, unknown)."""
    notice = order_notice(order, state, detail)
    if notice is not None:
        event(s, order.user_id, *notice)


def position_closed(s: Session, user_id: int, symbol: str, account: str, pnl: float, r: float | None) -> None:
    if simulated_account(account):
        return
    r_text = "" if r is None else f", {r:+.2f} R"
    event(s, user_id, "position_closed", f"Position closed: {symbol} on {account}, P&L {pnl:+.2f}{r_text}",
          "/portfolio")


# An execution's failure, with its user and strategy name read by the INSERT itself (no query before it).
_E, _S = Execution.__table__, Strategy.__table__
_FAILED = insert(_T).from_select(
    ["user_id", "kind", "text", "link", "fanned_out", "created_at"],
    select(_E.c.user_id, literal("execution_failed"),
           literal("Execution of strategy ") + _S.c.name + bindparam("tail"), bindparam("link"),
           literal(False, Boolean), bindparam("now", type_=NotifyEvent.created_at.type))
    .select_from(_E.join(_S, _S.c.id == _E.c.strategy_id))
    .where(_E.c.id == bindparam("execution"), _E.c.trigger.notin_(QUIET_TRIGGERS)))


def execution_failed(conn, execution_id: str, failed_step: str | None, error: str | None) -> None:
    """The failure of a run, unless it was a backtest, a session re-run or a replay (a WHERE on the trigger:
    still one statement)."""
    tail = f" failed at step {failed_step or '?'}: {(error or 'no error recorded')[:1000]}"
    conn.execute(_FAILED, {"execution": execution_id, "tail": tail, "link": f"/executions/{execution_id}",
                           "now": utcnow()})


# A scheduled slot that will not run (missed, skipped, its worker lost), once per strategy and exchange day: a
# strategy due every few minutes on a box that is down says so once, not at every slot. Its user, strategy
# name and the dedupe key are read by the INSERT itself from the slot.
_SL = ScheduleSlot.__table__


def _missed(dialect):
    select_ = (select(_S.c.user_id, literal("slot_missed"),
                      literal("Scheduled run of strategy ") + _S.c.name + literal(" not made: ") + bindparam("reason"),
                      literal("/executions"), literal(False, Boolean),
                      bindparam("now", type_=NotifyEvent.created_at.type),
                      literal("missed:") + cast(_SL.c.strategy_id, String) + literal(":") + bindparam("day"))
               .select_from(_SL.join(_S, _S.c.id == _SL.c.strategy_id))
               .where(_SL.c.id == bindparam("slot"), _SL.c.execution_id.is_(None)))
    return (dialect.insert(_T).from_select(
        ["user_id", "kind", "text", "link", "fanned_out", "created_at", "dedupe_key"], select_)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]))


_MISSED = {"sqlite": _missed(sqlite), "postgresql": _missed(postgresql)}


def slot_missed(conn, slot_id: int, reason: str) -> None:
    """A slot recorded skipped or failed without a run of its own (its execution, if it had one, reports its
    own failure): the first such slot of the strategy on this exchange day is an event, later ones are not."""
    now = utcnow()
    conn.execute(_MISSED[conn.dialect.name], {"slot": slot_id, "reason": (reason or "no reason recorded")[:1000],
                                              "now": now, "day": now.astimezone(EXCHANGE_TZ).date().isoformat()})
