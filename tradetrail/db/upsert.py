"""INSERT … ON CONFLICT DO NOTHING for both SQLite and PostgreSQL, telling whether this call inserted.

The answer comes from ``RETURNING``, not ``rowcount``: with psycopg an insert SQLAlchemy gives an implicit
RETURNING reports a rowcount of -1 whether or not a row went in, and exactly-once claims depend on it.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, values: dict, key: list[str]) -> int:
    """Insert ``values`` unless a row with the same ``key`` exists; return 1 if this call inserted it, else 0."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
            .returning(*[table.c[k] for k in key]))
    return 1 if conn.execute(stmt).first() is not None else 0


def insert_ignore_many(conn: Connection, table: Table, rows: list[dict], key: list[str]) -> None:
    """Insert every row of ``rows`` (one statement) but those whose ``key`` already exists."""
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(table).values(rows).on_conflict_do_nothing(index_elements=key))
