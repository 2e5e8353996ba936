"""INSERT … ON CONFLICT DO NOTHING for both SQLite and PostgreSQL, telling whether this call inserted.

The answer comes from ``RETURNING``, not ``rowcount``: with psycopg an insert SQLAlchemy gives an implicit
RETURNING reports a rowcount of -1 whether or not a row went in, and exactly-once claims depend on it.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


@lru_cache(maxsize=256)
def _statement(dialect_name: str, table: Table, key: tuple[str, ...], returning: bool):
    """Built once per table and key: the values come as parameters (a run inserts several such rows, and
    building the statement cost more CPU than the database took to run it)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(key))
    return stmt.returning(*[table.c[k] for k in key]) if returning else stmt


def insert_ignore(conn: Connection, table: Table, values: dict, key: list[str]) -> int:
    """Insert ``values`` unless a row with the same ``key`` exists; return 1 if this call inserted it, else 0."""
    stmt = _statement(conn.dialect.name, table, tuple(key), True)
    return 1 if conn.execute(stmt, values).first() is not None else 0


def insert_ignore_many(conn: Connection, table: Table, rows: list[dict], key: list[str]) -> None:
    """Insert every row of ``rows`` but those whose ``key`` already exists."""
    if rows:
        conn.execute(_statement(conn.dialect.name, table, tuple(key), False), rows)
