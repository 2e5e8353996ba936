"""The simulated broker's own books. They play the broker's side: our tables (orders, fills, positions) are
reconciled against these exactly as they would be against IBKR."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base


class SimAccount(Base):
    __tablename__ = "sim_accounts"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    cash: Mapped[float] = mapped_column(Float)
    initial_cash: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(8), default="USD")


class SimClock(Base):
    """How far the simulator has processed one instrument's bars for one account."""

    __tablename__ = "sim_clocks"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    clock: Mapped[datetime]


class SimOrder(Base):
    __tablename__ = "sim_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the broker order id
    account: Mapped[str] = mapped_column(String(32), index=True)
    client_order_id: Mapped[str] = mapped_column(String(40), unique=True)
    parent_client_order_id: Mapped[str | None] = mapped_column(String(40))
    symbol: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    limit_price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    tif: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))  # SUBMITTED | FILLED | CANCELLED | REJECTED
    filled_quantity: Mapped[float] = mapped_column(Float, default=0.0)
    avg_fill_price: Mapped[float | None] = mapped_column(Float)
    placed_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]  # the bar time it filled, or when it was cancelled (simulator time)
    reason: Mapped[str] = mapped_column(Text, default="")


class SimFill(Base):
    __tablename__ = "sim_fills"
    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    account: Mapped[str] = mapped_column(String(32), index=True)
    client_order_id: Mapped[str] = mapped_column(String(40))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    commission: Mapped[float] = mapped_column(Float)
    filled_at: Mapped[datetime]


class SimPosition(Base):
    __tablename__ = "sim_positions"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[float] = mapped_column(Float)
    avg_cost: Mapped[float] = mapped_column(Float)


class SimQuestion(Base):
    """A confirmation the simulator asked and is waiting on (like IBKR's reply ids)."""

    __tablename__ = "sim_questions"
    reply_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # the pending orders as JSON
