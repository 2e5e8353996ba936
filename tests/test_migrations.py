"""Alembic is the only schema source: the migrated database must match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tradetrail.db.migrate import current_revision, upgrade
from tradetrail.db.models import Base

HEAD = "0002"


def test_migrations_match_models(app):
    with app.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_at_head(app):
    before = current_revision(app.engine)
    upgrade(app.engine)
    assert current_revision(app.engine) == before == HEAD
