"""The render cache's second level for live runs: a drawn chart kept as an artifact and named by its render
key in ``chart_renders``, so other processes (embedded helpers, Celery workers) and the next start of this
one find it instead of drawing it again.

A kept chart is trusted only if its bytes still hash to the artifact's name; a missing or damaged artifact
is a miss (the chart is drawn again and kept again), never a wrong picture.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from tradetrail.artifacts.port import ArtifactNotFound, sha256_hex
from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.db.models import ChartRender
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore

_CR = ChartRender.__table__
_FIND = select(_CR.c.sha256).where(_CR.c.render_key == bindparam("key"))  # built once: every miss asks


class ArtifactRenders:
    """:class:`tradetrail.charts.cache.StoredRenders` over the artifact registry and ``chart_renders``."""

    def __init__(self, artifacts: ArtifactRegistry):
        self.artifacts = artifacts

    def find(self, key: str) -> bytes | None:
        with self.artifacts.engine.connect() as conn:
            digest = conn.scalar(_FIND, {"key": key})
        if digest is None:
            return None
        try:
            png = self.artifacts.store.get(digest)
        except ArtifactNotFound:
            return None
        return png if sha256_hex(png) == digest else None

    def keep(self, key: str, png: bytes) -> None:
        digest = self.artifacts.save(png, "image/png")
        with self.artifacts.engine.begin() as conn:  # a race with another process: the first row stays
            insert_ignore(conn, _CR, {"render_key": key, "sha256": digest, "created_at": utcnow()},
                          key=["render_key"])
