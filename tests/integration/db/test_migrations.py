"""Alembic is the only schema source: the migrated database must match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tradetrail.db.migrate import current_revision, head_revision, upgrade
from tradetrail.db.models import Base


def test_migrations_match_models(app):
    with app.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_at_head(app):
    before = current_revision(app.engine)
    upgrade(app.engine)
    assert current_revision(app.engine) == before == head_revision()


def test_head_is_the_newest_numbered_script():
    from tradetrail.db.migrate import MIGRATIONS

    newest = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert head_revision() == newest


def test_insert_ignore_tells_whether_this_call_inserted(app):
    """Exactly-once claims rely on it; psycopg's rowcount (-1) once made every caller think it had won."""
    from tradetrail.db.models import Artifact
    from tradetrail.db.types import utcnow
    from tradetrail.db.upsert import insert_ignore

    row = dict(sha256="a" * 64, content_type="text/plain", size=1, created_at=utcnow())
    with app.engine.begin() as conn:
        assert insert_ignore(conn, Artifact.__table__, row, key=["sha256"]) == 1
        assert insert_ignore(conn, Artifact.__table__, row, key=["sha256"]) == 0
