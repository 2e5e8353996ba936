"""The built-in simulated broker (the embedded default): it keeps its own books in the database, so a
restart loses nothing and our order records can be reconciled against it like against IBKR.

Time passes only through :meth:`SimulatedBroker.sync`: orders placed at time T fill against the bars
stamped after T, one instrument clock per account. A replay-clock strategy trades on an account of its own
(:meth:`SimulatedBroker.account` with its strategy id): a real-time strategy on the same instrument would
otherwise move that clock years ahead and fill the replayed strategy's orders there. Fill rules, per daily bar,
are :mod:`tradetrail.domain.fill_rules` (shared with the backtest): MKT at the open, STP through the stop at
the worse of open and stop (both with ``slippage_bps`` against us), LMT at the limit or better; an unfilled
DAY order expires after its first bar; bracket children wake when their parent fills, stop before target on
one bar, one-cancels-the-other; cancelling a parent cancels its children.
- Commission per order from the IBKR fixed or tiered schedule. A duplicate client order id is rejected
  with IBKR's wording ("Local order ID=... is already registered").
Failure drills for tests and rehearsals come from ``TRADETRAIL_SIM_FAULTS``:
``place_timeout_after_accept`` (the order is booked, the caller sees a timeout) and
``place_timeout_before_accept`` (nothing is booked, the caller sees a timeout).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tradetrail.broker.port import (
    AccountValues,
    BrokerFill,
    BrokerHealth,
    BrokerOrder,
    BrokerPosition,
    PlaceResult,
    Question,
)
from tradetrail.db.sim_models import SimAccount, SimClock, SimFill, SimOrder, SimPosition, SimQuestion
from tradetrail.db.upsert import insert_ignore
from tradetrail.domain.commissions import commission
from tradetrail.domain.contract import Contract
from tradetrail.domain.fill_rules import bar_events, fill_price
from tradetrail.domain.orders import OrderSpec
from tradetrail.domain.positions import Position, apply_fill
from tradetrail.marketdata.port import MarketData

QUESTION_TEXT = {
    "o163": "The following order exceeds the price percentage limit.",
    "o354": "You are submitting an order without market data.",
    "o383": "The following order size exceeds the size limit.",
    "o451": "The following order value exceeds the total value limit.",
    "o10151": "You are about to submit a market order; market orders can execute far from the last price.",
    "o10152": "You are about to submit a stop order; it may execute far from the stop price.",
}
QUESTION_ORDER_TYPES = {"o10151": {"MKT"}, "o10152": {"STP"}}  # asked only for these; others for every order


RECENT = timedelta(days=7)
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


# Read-only look-ups built once (a run asks each several times; building a statement costs more CPU than
# SQLite takes to answer it), on table columns: plain rows, no ORM objects.
_C, _SO, _SP, _SF = SimClock.__table__, SimOrder.__table__, SimPosition.__table__, SimFill.__table__
_CLOCKS = select(_C.c.symbol, _C.c.source, _C.c.clock).where(_C.c.account == bindparam("account"))
_LATEST_CLOCK = select(func.max(_C.c.clock)).where(_C.c.account == bindparam("account"))
_POSITIONS = select(_SP).where(_SP.c.account == bindparam("account"))
_ORDERS = select(_SO).where(_SO.c.account == bindparam("account"))
_RECENT_ORDERS = _ORDERS.where(or_(_SO.c.status == "SUBMITTED", _SO.c.closed_at.is_(None),
                                   _SO.c.closed_at >= bindparam("since"))).order_by(_SO.c.id)
_ALL_ORDERS = _ORDERS.order_by(_SO.c.id)
_FILLS = select(_SF).where(_SF.c.account == bindparam("account"))
_FILLS_SINCE = _FILLS.where(_SF.c.filled_at >= bindparam("since")).order_by(_SF.c.filled_at, _SF.c.order_id)
_ALL_FILLS = _FILLS.order_by(_SF.c.filled_at, _SF.c.order_id)  # a bracket's entry first
_WORKING_SYMBOLS = select(_SO.c.symbol, _SO.c.source).where(_SO.c.account == bindparam("account"),
                                                            _SO.c.status == "SUBMITTED").distinct()
_HELD_SYMBOLS = select(_SP.c.symbol, _SP.c.source).where(_SP.c.account == bindparam("account"))
_SA = SimAccount.__table__
_ACCOUNT = select(_SA.c.account).where(_SA.c.account == bindparam("account"))
_ACCOUNT_VALUES = select(_SA.c.cash, _SA.c.currency).where(_SA.c.account == bindparam("account"))
_TAKEN = select(_SO.c.client_order_id).where(_SO.c.client_order_id.in_(bindparam("coids", expanding=True)))
_CLOCK_OF = select(_C.c.clock).where(_C.c.account == bindparam("account"), _C.c.symbol == bindparam("symbol"))
_INSERT_ORDERS = insert(_SO).returning(_SO.c.id, sort_by_parameter_order=True)  # ids in the order given
_FIRST_WORKING = (select(_SO.c.placed_at)
                  .where(_SO.c.account == bindparam("account"), _SO.c.symbol == bindparam("symbol"),
                         _SO.c.status == "SUBMITTED").order_by(_SO.c.placed_at).limit(1))
_START_CLOCK = insert(_C)
_MOVE_CLOCK = (update(_C).where(_C.c.account == bindparam("acct"), _C.c.symbol == bindparam("sym"))
               .values(clock=bindparam("clock")))
_WORKING_BEFORE = (select(SimOrder).where(SimOrder.account == bindparam("account"),
                                          SimOrder.symbol == bindparam("symbol"), SimOrder.status == "SUBMITTED",
                                          SimOrder.placed_at < bindparam("ts")).order_by(SimOrder.id))
_FILLED_AMONG = select(SimOrder.client_order_id).where(
    SimOrder.client_order_id.in_(bindparam("coids", expanding=True)), SimOrder.status == "FILLED")


def _thread_lock(name: str) -> threading.Lock:
    with _GUARD:
        return _THREAD_LOCKS.setdefault(name, threading.Lock())


class SimulatedTimeout(TimeoutError):
    """A drilled timeout: the caller cannot know whether the order was booked."""


class SimulatedBroker:
    name = "simulated"
    simulated = True

    def __init__(self, engine: Engine, market_data: Callable[[str], MarketData], *, initial_cash: float = 100_000.0,
                 commission_schedule: str = "fixed", slippage_bps: float = 5.0, questions: tuple[str, ...] = (),
                 faults: tuple[str, ...] = (), locks: Callable[[str], AbstractContextManager] | None = None):
        self.engine = engine
        self.market_data = market_data
        self.initial_cash = initial_cash
        self.schedule = commission_schedule
        self.slippage = slippage_bps / 10_000
        self.questions = questions
        self.faults = set(faults)
        # A broker keeps its books consistent under concurrent clients: every write to one account's books
        # happens under that account's lock (process-wide when given, else per process).
        self._locks = locks or _thread_lock

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- session and account ------------------------------------------------------------------------------
    def health(self) -> BrokerHealth:
        return BrokerHealth(broker=self.name, authenticated=True, connected=True, competing=False, paper=True,
                            message="in-process simulated broker")

    def account(self, user_id: int, strategy_id: int | None = None) -> str:
        """``SIM<user>`` shared by the user's real-clock strategies; ``SIM<user>-S<strategy>`` for one
        replay-clock strategy. Created on first use with the initial cash."""
        account = f"SIM{user_id:06d}" if strategy_id is None else f"SIM{user_id:06d}-S{strategy_id:06d}"
        with self.engine.connect() as conn:
            if conn.execute(_ACCOUNT, {"account": account}).first() is not None:
                return account
        with self.engine.begin() as conn:  # created once, whoever asks first: the insert ignores a second
            insert_ignore(conn, _SA, {"account": account, "cash": self.initial_cash,
                                      "initial_cash": self.initial_cash, "currency": "USD"}, key=["account"])
        return account

    def _prices(self, s: Session, account: str) -> dict[str, float]:
        """Last close at each instrument's clock (the simulator's mark)."""
        prices = {}
        for clock in s.execute(_CLOCKS, {"account": account}):
            bars = self._bars(clock.source, clock.symbol, None, clock.clock, lookback=1)  # the last bar is enough
            if len(bars):
                prices[clock.symbol] = float(bars["close"].iloc[-1])
        return prices

    def account_values(self, account: str) -> AccountValues:
        return self.account_state(account)[0]

    def account_state(self, account: str) -> tuple[AccountValues, list[BrokerPosition]]:
        """The account's values and its open positions from one read of the books (one mark of the clocks)."""
        with self._session() as s:
            acct = s.execute(_ACCOUNT_VALUES, {"account": account}).first()
            if acct is None:
                raise KeyError(f"no simulated account {account}")
            prices = self._prices(s, account)
            rows = s.execute(_POSITIONS, {"account": account}).all()
        value = sum(p.quantity * prices.get(p.symbol, p.avg_cost) for p in rows)
        values = AccountValues(account=account, cash=round(acct.cash, 6), equity=round(acct.cash + value, 6),
                               currency=acct.currency, paper=True)
        return values, [BrokerPosition(symbol=r.symbol, conid=None, quantity=r.quantity, avg_cost=r.avg_cost,
                                       market_price=prices.get(r.symbol)) for r in rows if r.quantity != 0]

    # -- placing ------------------------------------------------------------------------------------------
    def place(self, account: str, contract: Contract, orders: list[OrderSpec]) -> PlaceResult:
        if "place_timeout_before_accept" in self.faults:
            raise SimulatedTimeout("simulated timeout before the order reached the book")
        pending = {"contract": {"source": contract.source, "symbol": contract.symbol},
                   "orders": [self._spec_dict(o) for o in orders], "asked": []}
        return self._ask_or_accept(account, pending)

    def reply(self, account: str, reply_id: str, confirmed: bool) -> PlaceResult:
        with self._session() as s:
            q = s.get(SimQuestion, reply_id)
            if q is None or q.account != account:
                return PlaceResult("rejected", reason=f"reply id not found: '{reply_id}'")
            pending = json.loads(q.payload)
            s.delete(q)
            s.commit()
        if not confirmed:
            return PlaceResult("rejected", reason="Order not confirmed")
        return self._ask_or_accept(account, pending)

    def _ask_or_accept(self, account: str, pending: dict) -> PlaceResult:
        with self._locks(f"sim:{account}"):
            return self._ask_or_accept_locked(account, pending)

    def _ask_or_accept_locked(self, account: str, pending: dict) -> PlaceResult:
        types = {o["order_type"] for o in pending["orders"]}
        remaining = [m for m in self.questions if m not in pending["asked"]
                     and (m not in QUESTION_ORDER_TYPES or QUESTION_ORDER_TYPES[m] & types)]
        if remaining:
            msg = remaining[0]
            pending["asked"].append(msg)
            reply_id = str(uuid.uuid4())
            with self._session() as s:
                s.add(SimQuestion(reply_id=reply_id, account=account, payload=json.dumps(pending)))
                s.commit()
            return PlaceResult("needs_confirmation", questions=(
                Question(reply_id, (msg,), QUESTION_TEXT.get(msg, f"Confirm message {msg}?")),))
        return self._accept(account, pending)

    def _accept(self, account: str, pending: dict) -> PlaceResult:
        contract = pending["contract"]
        with self.engine.begin() as conn:
            coids = [spec["client_order_id"] for spec in pending["orders"]]
            taken = set(conn.execute(_TAKEN, {"coids": coids}).scalars())
            for coid in coids:  # one query for the bracket; the first taken id in the order given is named
                if coid in taken:
                    return PlaceResult("rejected", reason=f"Order couldn't be submitted: Local order ID="
                                                          f"{coid} is already registered.")
            clock = conn.execute(_CLOCK_OF, {"account": account, "symbol": contract["symbol"]}).scalar()
            placed_at = clock or datetime.now(UTC)
            new = conn.execute(_INSERT_ORDERS, [
                dict(account=account, source=contract["source"], symbol=contract["symbol"], status="SUBMITTED",
                     placed_at=placed_at, filled_quantity=0.0, avg_fill_price=None, closed_at=None, reason="",
                     **spec) for spec in pending["orders"]]).scalars().all()
            ids = {spec["client_order_id"]: str(row_id) for spec, row_id in zip(pending["orders"], new, strict=True)}
        if "place_timeout_after_accept" in self.faults:
            raise SimulatedTimeout("simulated timeout after the order was booked")
        return PlaceResult("accepted", broker_order_ids=ids)

    @staticmethod
    def _spec_dict(o: OrderSpec) -> dict:
        return {"client_order_id": o.client_order_id, "parent_client_order_id": o.parent_client_order_id,
                "side": o.side.value, "order_type": o.order_type.value, "quantity": o.quantity,
                "limit_price": o.limit_price, "stop_price": o.stop_price, "tif": o.tif}

    # -- reading ------------------------------------------------------------------------------------------
    def orders(self, account: str) -> list[BrokerOrder]:
        """Working orders and those that finished within a week of the account's latest clock (IBKR, too,
        only lists recent orders; older ones are settled history)."""
        with self._session() as s:
            latest = s.scalar(_LATEST_CLOCK, {"account": account})
            rows = s.execute(_ALL_ORDERS if latest is None else _RECENT_ORDERS,
                             {"account": account, "since": latest - RECENT if latest is not None else None}).all()
        return [self._broker_order(r) for r in rows]

    def order(self, account: str, client_order_id: str) -> BrokerOrder | None:
        with self._session() as s:
            row = s.scalar(select(SimOrder).where(SimOrder.account == account,
                                                  SimOrder.client_order_id == client_order_id))
        return self._broker_order(row) if row else None

    @staticmethod
    def _broker_order(r) -> BrokerOrder:
        return BrokerOrder(broker_order_id=str(r.id), client_order_id=r.client_order_id, symbol=r.symbol,
                           side=r.side, order_type=r.order_type, quantity=r.quantity,
                           filled_quantity=r.filled_quantity, avg_fill_price=r.avg_fill_price, status=r.status,
                           limit_price=r.limit_price, stop_price=r.stop_price,
                           parent_client_order_id=r.parent_client_order_id, reason=r.reason)

    def fills(self, account: str, since: datetime | None = None) -> list[BrokerFill]:
        with self._session() as s:
            rows = s.execute(_ALL_FILLS if since is None else _FILLS_SINCE, {"account": account, "since": since}).all()
        return [BrokerFill(exec_id=r.exec_id, broker_order_id=str(r.order_id), client_order_id=r.client_order_id,
                           symbol=r.symbol, side=r.side, quantity=r.quantity, price=r.price,
                           commission=r.commission, time=r.filled_at) for r in rows]

    def positions(self, account: str) -> list[BrokerPosition]:
        with self._session() as s:
            prices = self._prices(s, account)
            rows = [r for r in s.execute(_POSITIONS, {"account": account}) if r.quantity != 0]
        return [BrokerPosition(symbol=r.symbol, conid=None, quantity=r.quantity, avg_cost=r.avg_cost,
                               market_price=prices.get(r.symbol)) for r in rows]

    def cancel(self, account: str, broker_order_id: str) -> bool:
        with self._locks(f"sim:{account}"), self._session() as s:
            row = s.get(SimOrder, int(broker_order_id))
            if row is None or row.account != account or row.status != "SUBMITTED":
                return False
            self._cancel(s, row, "cancelled on request")
            s.commit()
        return True

    def _cancel(self, s: Session, row: SimOrder, reason: str, at: datetime | None = None) -> None:
        at = at or self._clock_of(s, row)
        row.status, row.reason, row.closed_at = "CANCELLED", reason, at
        for child in s.scalars(select(SimOrder).where(SimOrder.parent_client_order_id == row.client_order_id,
                                                      SimOrder.status == "SUBMITTED")):
            child.status, child.reason, child.closed_at = "CANCELLED", f"parent {reason}", at

    @staticmethod
    def _clock_of(s: Session, row: SimOrder) -> datetime:
        clock = s.get(SimClock, (row.account, row.symbol))
        return clock.clock if clock else row.placed_at

    # -- time passing -------------------------------------------------------------------------------------
    def _bars(self, source: str, symbol: str, after: datetime | None, until: datetime,
              lookback: int = 100_000) -> pd.DataFrame:
        md = self.market_data(source)
        bars = md.daily_bars(Contract(source=source, symbol=symbol, name=symbol), as_of=until, lookback=lookback)
        return bars if after is None else bars.loc[bars.index > pd.Timestamp(after)]

    def sync(self, account: str, now: datetime, contracts: tuple[Contract, ...] = ()) -> None:
        """Process every instrument with working orders or positions, and ``contracts``, up to ``now``
        (never backwards); orders placed next on those instruments are stamped with ``now``."""
        with self._locks(f"sim:{account}"), self._session() as s:
            working = s.execute(_WORKING_SYMBOLS, {"account": account}).all()
            held = s.execute(_HELD_SYMBOLS, {"account": account}).all()
            asked = {(c.symbol, c.source) for c in contracts}
            for symbol, source in sorted(set(working) | set(held) | asked):
                self._advance(s, account, symbol, source, now)
            s.commit()

    def _advance(self, s: Session, account: str, symbol: str, source: str, now: datetime) -> None:
        conn, key = s.connection(), {"account": account, "symbol": symbol}
        clock = conn.execute(_CLOCK_OF, key).scalar()  # the clock row on the table: read and written with Core
        if clock is not None and clock >= now:
            return
        after = conn.execute(_FIRST_WORKING, key).scalar() if clock is None else clock
        if after is not None:
            for ts, bar in self._bars(source, symbol, after, now).iterrows():
                self._process_bar(s, account, symbol, ts.to_pydatetime(), bar)
        if clock is None:
            conn.execute(_START_CLOCK, {**key, "source": source, "clock": now})
        else:
            conn.execute(_MOVE_CLOCK, {"acct": account, "sym": symbol, "clock": now})

    def _process_bar(self, s: Session, account: str, symbol: str, ts: datetime, bar) -> None:
        working = s.scalars(_WORKING_BEFORE, {"account": account, "symbol": symbol, "ts": ts}).all()
        if not working:  # nothing can fill or expire on this bar
            return
        parents = {c.parent_client_order_id for c in working if c.parent_client_order_id is not None}
        filled = set(s.scalars(_FILLED_AMONG, {"coids": sorted(parents)})) if parents else set()
        events = bar_events(working, filled.__contains__, float(bar["open"]), float(bar["high"]), float(bar["low"]),
                            self.slippage)
        for event in events:  # the shared rules decide (domain/fill_rules.py); the books are kept here
            row = event.order
            if event.kind == "fill":
                self._fill(s, row, event.price, ts)
            else:
                row.status, row.reason, row.closed_at = "CANCELLED", event.reason, ts

    def _fill(self, s: Session, row: SimOrder, price: float, ts: datetime) -> None:
        price = fill_price(price)
        fee = commission(self.schedule, row.quantity, price)
        acct = s.get(SimAccount, row.account)
        sign = 1 if row.side == "BUY" else -1
        acct.cash -= sign * row.quantity * price + fee
        pos = s.get(SimPosition, (row.account, row.symbol))
        current = Position(pos.quantity, pos.avg_cost) if pos else Position()
        new, _ = apply_fill(current, row.side, row.quantity, price, fee)
        if pos is None:
            pos = SimPosition(account=row.account, symbol=row.symbol, source=row.source, quantity=0, avg_cost=0)
            s.add(pos)
        pos.quantity, pos.avg_cost = new.quantity, new.avg_cost
        row.status, row.filled_quantity, row.avg_fill_price, row.closed_at = "FILLED", row.quantity, price, ts
        s.add(SimFill(exec_id=f"sim-{row.id}-1", order_id=row.id, account=row.account,
                      client_order_id=row.client_order_id, symbol=row.symbol, side=row.side, quantity=row.quantity,
                      price=price, commission=fee, filled_at=ts))
