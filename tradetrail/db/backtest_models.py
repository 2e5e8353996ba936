"""A backtest's row: what was asked, how far it got, and its report (the curves and trades are artifacts of
its execution, whose one lineage step ``backtest`` lists them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base
from tradetrail.db.types import utcnow


class Backtest(Base):
    __tablename__ = "backtests"
    id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    strategy_version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    initial_cash: Mapped[float] = mapped_column(Float)
    params: Mapped[dict[str, Any]]  # analyst override, parameter overrides of a grid, costs
    grid_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    done: Mapped[int] = mapped_column(Integer, default=0)  # sessions through the loop
    total: Mapped[int] = mapped_column(Integer, default=0)
    data_sha256: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
