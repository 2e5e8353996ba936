"""Test harness: every test that touches the database gets the real thing.

``TRADETRAIL_TEST_DB=sqlite`` (default) uses a SQLite file; ``TRADETRAIL_TEST_DB=postgresql`` creates a fresh
database on the local PostgreSQL (``TRADETRAIL_TEST_PG_URL``, default the ``postgres`` database on
127.0.0.1:5432) for the session and drops it afterwards. The schema is migrated once with Alembic; each test
starts from empty tables.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from tradetrail.analyst import response_format as rf
from tradetrail.app_context import App
from tradetrail.db.models import Base
from tradetrail.db.session import engine_for
from tradetrail.runtime.build import build_app
from tradetrail.settings import Settings

for _key in [k for k in os.environ if k.startswith("TRADETRAIL_") and not k.startswith("TRADETRAIL_TEST_")]:
    del os.environ[_key]  # a developer's own settings must not change what the tests see

BACKEND = os.environ.get("TRADETRAIL_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("TRADETRAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_report_header(config) -> str:
    return f"tradetrail database backend: {BACKEND}"


@pytest.hookimpl(tryfirst=True)  # before `-m "not once"` deselects
def pytest_collection_modifyitems(config, items) -> None:
    """A test that never reaches the backend under test (none of the fixtures ``db_url``, ``migrated`` or
    ``backend``, directly or through another fixture) is the same on either: it is marked ``once``, so
    ``make test`` runs it on PostgreSQL only."""
    for item in items:
        if not {"migrated", "db_url", "backend"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.once)


@pytest.fixture(autouse=True)
def _no_remembered_response_formats():
    """Each test starts with no response_format remembered: the fake model servers of earlier tests may have
    had the same port (the memory is per base URL and model, for the life of the process)."""
    rf.forget_all()
    yield
    rf.forget_all()


@pytest.fixture(scope="session")
def backend() -> str:
    """The database backend under test, for a test that builds its own database there."""
    return BACKEND


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'tradetrail.db'}"
        return
    if BACKEND != "postgresql":
        raise pytest.UsageError(f"TRADETRAIL_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
    name = f"tradetrail_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine_for.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated(db_url) -> str:
    from tradetrail.db.migrate import upgrade

    engine = engine_for(db_url)
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        # Tables are emptied by DELETE (below): without autovacuum the dead rows' space is not offered again, so
        # new rows go at the end as after a TRUNCATE and a read without ORDER BY sees them in insertion order
        # (a test that relied on it failed once autovacuum ran mid-suite; such reads now say ORDER BY).
        with engine.begin() as conn:
            conn.exec_driver_sql("; ".join(f"ALTER TABLE {t.name} SET (autovacuum_enabled = false)"
                                           for t in Base.metadata.sorted_tables))
    return db_url


# PostgreSQL: DELETE (children first) and restart the sequences that were used, in one round trip. TRUNCATE of
# the 38 tables took ~220 ms per test (a new file for every table), ~4 minutes over the suite; this takes ~7 ms.
_RESTART_USED_SEQUENCES = ("SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false) "
                           "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL")


def _empty_tables(url: str) -> None:
    engine = engine_for(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("; ".join([*(f"DELETE FROM {name}" for name in tables), _RESTART_USED_SEQUENCES]))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def settings(migrated, tmp_path) -> Settings:
    _empty_tables(migrated)
    return Settings(home=tmp_path, database_url=migrated)


@pytest.fixture
def app(settings) -> App:
    return build_app(settings, migrate=False)


@pytest.fixture
def cli_env(settings) -> dict[str, str]:
    """Environment for running the real ``tradetrail`` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETRAIL_")}
    env.update(TRADETRAIL_HOME=str(settings.home), TRADETRAIL_DATABASE_URL=settings.database_url)
    return env
