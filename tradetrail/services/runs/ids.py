"""An execution named by the start of its id, as the command line's tables print it (the shortest prefix
of at least 8 characters that no other listed id shares)."""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.db.models import Execution
from tradetrail.domain.errors import NotFound

MIN_PREFIX = 8


def execution_id_from_prefix(app, prefix: str) -> str:
    """The one execution id starting with ``prefix``: a full id as given; ``NotFound`` for none, too short a
    prefix, or more than one match (the message says which)."""
    prefix = prefix.strip().lower()
    if len(prefix) < MIN_PREFIX or not all(c in "0123456789abcdef-" for c in prefix):
        return prefix  # not a prefix we shorten to: looked up as given
    with app.Session() as s:
        ids = s.scalars(select(Execution.id).where(Execution.id.startswith(prefix, autoescape=True))
                        .order_by(Execution.id).limit(2)).all()
    if not ids:
        raise NotFound(f"no execution {prefix!r}")
    if len(ids) > 1:
        raise NotFound(f"more than one execution starts with {prefix!r}; give more of its id")
    return ids[0]
