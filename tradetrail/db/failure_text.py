"""One line that says what failed, for a slot's reason, a log line or the command line's error message.

SQLAlchemy's message repeats the statement and its parameters and ends with a link; the driver's own
message ("database is locked", "connection refused") is what an operator needs, so that is kept.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

MAX_CHARS = 500


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, at most ``MAX_CHARS`` characters; the driver's error for database errors."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:MAX_CHARS]


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError)


def database_message(exc: BaseException) -> str:
    """The driver's message alone ("database is locked"), first line."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    return lines[0] if lines else type(orig).__name__
