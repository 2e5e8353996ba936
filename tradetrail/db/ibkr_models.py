"""The IBKR adapter's own record of what it sent, written before each placement.

IBKR echoes our client order id (``cOID`` → ``order_ref``) only on a bracket's parent; the children carry
``parentId`` and no id of ours. This table remembers every leg (its parent, side, type, size, prices) so the
adapter can recognise the children in IBKR's lists, also after a crash that lost the placement's answer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base
from tradetrail.db.types import utcnow


class IbkrOrderLink(Base):
    __tablename__ = "ibkr_order_links"
    client_order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account: Mapped[str] = mapped_column(String(32), index=True)
    parent_client_order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    position: Mapped[int] = mapped_column(Integer)  # index of the ticket in the placement (parent first)
    conid: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    limit_price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    tif: Mapped[str] = mapped_column(String(8))
    broker_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
