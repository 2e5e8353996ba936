"""The TWS adapter's record of every leg it sent, written (committed) before the leg goes out.

Why in the database: a leg TWS never answered (the connection dropped at placement) may not be listed to a
later session, and another process (the serving process reconciling after a reconnection, ``tradetrail
reconcile``) must not then call it absent: every process reads the same marks here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base


class TwsPlacement(Base):
    __tablename__ = "tws_placements"
    client_order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sent_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]  # TWS acknowledged, refused or listed it (or nothing went out)
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[datetime | None]  # never answered, and listed nowhere by TWS past the expiry
    looks: Mapped[int] = mapped_column(Integer, default=0)  # settled looks past the expiry that listed it nowhere
