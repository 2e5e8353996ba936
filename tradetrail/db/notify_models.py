"""Notifications: a user's channels (Apprise URLs, encrypted), the outbox of events, and their deliveries.

An event row is written in the same transaction as the thing it reports (an order's new state, a failed
execution), so a notification exists exactly when its cause was committed. The sender fans each event out
to the user's channels that want it (one delivery row per event and channel, unique) and delivers them,
recording every attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base
from tradetrail.db.types import utcnow


class NotifyChannel(Base):
    """One Apprise URL of a user. ``secret`` is the URL encrypted (Fernet); ``redacted`` is what is shown."""

    __tablename__ = "notify_channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret: Mapped[str] = mapped_column(Text)
    redacted: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[Any]]  # event kinds it wants; ["*"] for all
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyEvent(Base):
    """The outbox: one event for one user. ``fanned_out`` once its delivery rows exist; ``dedupe_key`` makes
    an event that several processes may raise (the daily summary) exist once."""

    __tablename__ = "notify_events"
    __table_args__ = (Index("ix_notify_events_fanned_out_id", "fanned_out", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(300))
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class NotifyDelivery(Base):
    """One event to one channel. ``status``: pending | sending (claimed, ``lease_until`` set) | delivered |
    failed (gave up after the last attempt). Unique per (event, channel): never two deliveries of one event
    to one channel."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "channel_id", name="uq_notify_deliveries_event_channel"),
                      Index("ix_notify_deliveries_status_next", "status", "next_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("notify_events.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channels.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyAttempt(Base):
    """Every try of a delivery: started, and finished with ok or the error (redacted). One never finished is
    a sender that died mid-delivery."""

    __tablename__ = "notify_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("notify_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    ok: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
