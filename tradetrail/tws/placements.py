"""The never-answered placement marks, in the database so every process sees them (``tws_placements``).

A leg is claimed (a row, committed) before it is sent; TWS's acknowledgement, refusal or listing of it
answers the mark. A mark still unanswered means an earlier attempt may sit at TWS unlisted (an untransmitted
bracket leg after a drop): no process calls that order absent, and none sends it again. Claiming is atomic
(insert, or take over only a row already answered without a permId), so two processes placing the same
client order id at once send it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from tradetrail.db.tws_models import TwsPlacement
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore

KEPT_DAYS = 30  # answered or expired marks older than this are deleted at the next placement
LOOKS_TO_EXPIRE = 2
T = TwsPlacement


class NotClaimed(Exception):
    """A leg of the placement has a mark that forbids sending it (why)."""


class PlacementMarks:
    def __init__(self, engine: Engine):
        self.engine = engine

    def claim(self, refs: list[str]) -> None:
        """Mark every leg sent (committed before anything goes out), or NotClaimed and nothing marked."""
        now = utcnow()
        fresh = {"sent_at": now, "answered_at": None, "perm_id": None, "expired_at": None, "looks": 0}
        with self.engine.begin() as conn:
            conn.execute(delete(T).where(T.sent_at < now - timedelta(days=KEPT_DAYS),
                                         (T.answered_at.is_not(None)) | (T.expired_at.is_not(None))))
            for ref in refs:
                if insert_ignore(conn, T.__table__, {"client_order_id": ref, **fresh}, key=["client_order_id"]):
                    continue
                row = conn.execute(select(T.sent_at, T.answered_at, T.perm_id, T.expired_at)
                                   .where(T.client_order_id == ref)).one()
                if row.perm_id is not None:
                    raise NotClaimed(f"{ref} was placed before and TWS acknowledged it (permId {row.perm_id})")
                if row.answered_at is None and row.expired_at is None:
                    raise NotClaimed(f"{ref} was sent to TWS at {row.sent_at:%Y-%m-%d %H:%M:%S} UTC and never "
                                     "answered")
                taken = conn.execute(update(T).where(T.client_order_id == ref, T.perm_id.is_(None),
                                                     T.answered_at.is_not(None) | T.expired_at.is_not(None))
                                     .values(**fresh)).rowcount
                if taken != 1:
                    raise NotClaimed(f"{ref} is being placed by another process")

    def release(self, refs: list[str]) -> None:
        """Nothing of the placement went out: the claim is dropped (a later attempt may send it)."""
        with self.engine.begin() as conn:
            conn.execute(delete(T).where(T.client_order_id.in_(refs), T.answered_at.is_(None)))

    def answered(self, refs, perm_ids: dict[str, str] | None = None) -> None:
        """TWS answered (acknowledged, refused or listed) these legs."""
        hit = set(self.waiting()) & set(refs)
        if not hit and not perm_ids:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for ref in sorted(hit | set(perm_ids or ())):
                perm = (perm_ids or {}).get(ref)
                values = {"answered_at": now} | ({"perm_id": int(perm)} if perm and str(perm).isdigit() else {})
                conn.execute(update(T).where(T.client_order_id == ref, T.answered_at.is_(None)).values(**values))

    def waiting(self, refs: list[str] | None = None) -> dict[str, datetime]:
        """Unanswered, unexpired marks (client order id -> when sent), of ``refs`` or all."""
        q = select(T.client_order_id, T.sent_at).where(T.answered_at.is_(None), T.expired_at.is_(None))
        if refs is not None:
            q = q.where(T.client_order_id.in_(refs))
        with self.engine.connect() as conn:
            return dict(conn.execute(q.order_by(T.client_order_id)).all())

    def missed(self, ref: str) -> int:
        """One more settled look past the expiry listed ``ref`` nowhere: the looks so far (0: no longer
        waiting); at ``LOOKS_TO_EXPIRE`` the mark expires."""
        with self.engine.begin() as conn:
            conn.execute(update(T).where(T.client_order_id == ref, T.answered_at.is_(None), T.expired_at.is_(None))
                         .values(looks=T.looks + 1))
            looks = conn.execute(select(T.looks).where(T.client_order_id == ref, T.answered_at.is_(None),
                                                       T.expired_at.is_(None))).scalar()
            if looks is not None and looks >= LOOKS_TO_EXPIRE:
                conn.execute(update(T).where(T.client_order_id == ref).values(expired_at=utcnow()))
            return looks or 0
