"""Artifacts with their metadata: bytes go to the store, (hash, content type, size) to the ``artifacts`` table.

Both writes are idempotent, so saving the same chart twice costs one hash and one existence check. The
hashes already registered by this process are remembered up to ``KNOWN_MAX`` (then forgotten at once and
learnt again): a server running for months saves a new prompt every run, and the memory must stay bounded.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from tradetrail.artifacts.port import ArtifactStore, check_hash
from tradetrail.db.models import Artifact
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore


class ArtifactRegistry:
    KNOWN_MAX = 20_000  # ~2 MB of hashes

    def __init__(self, store: ArtifactStore, engine: Engine):
        self.store = store
        self.engine = engine
        self._known: set[str] = set()

    def save(self, data: bytes, content_type: str) -> str:
        digest = self.store.put(data)
        if digest not in self._known:
            with self.engine.begin() as conn:
                insert_ignore(conn, Artifact.__table__, dict(sha256=digest, content_type=content_type,
                                                             size=len(data), created_at=utcnow()),
                              key=["sha256"])
            if len(self._known) >= self.KNOWN_MAX:
                self._known.clear()
            self._known.add(digest)
        return digest

    def load(self, sha256: str) -> tuple[bytes, str]:
        """The bytes and content type; ``ArtifactNotFound`` if either is missing."""
        from tradetrail.artifacts.port import ArtifactNotFound

        check_hash(sha256)
        with self.engine.connect() as conn:
            ctype = conn.execute(select(Artifact.content_type).where(Artifact.sha256 == sha256)).scalar()
        if ctype is None:
            raise ArtifactNotFound(sha256)
        return self.store.get(sha256), ctype
