"""A backtest's row: what was asked, how far it got, and its report (the curves and trades are artifacts of
its execution, whose one lineage step ``backtest`` lists them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
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


SESSION_ACCOUNT_PREFIX = "BTS"  # the accounts of session re-runs (no broker's account ids start so)


class BacktestSession(Base):
    """One session of a backtest re-run through the 13 steps (its execution, trigger ``backtest-session``)
    on a simulated account of its own: one per backtest and session, so asking again opens the same one."""

    __tablename__ = "backtest_sessions"
    __table_args__ = (UniqueConstraint("backtest_id", "session", name="uq_backtest_sessions_backtest_session"),)
    id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True)
    backtest_id: Mapped[str] = mapped_column(ForeignKey("backtests.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session: Mapped[date] = mapped_column(Date)
    account: Mapped[str] = mapped_column(String(32), unique=True)  # the re-run's own simulated account
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
