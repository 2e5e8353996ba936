"""Reading artifacts on a user's behalf: only those an execution of theirs recorded."""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.artifacts.port import ArtifactNotFound, check_hash
from tradetrail.db.account_models import ArtifactRef
from tradetrail.db.models import Execution
from tradetrail.domain.errors import NotFound


def load_for_user(app, user_id: int, sha256: str) -> tuple[bytes, str]:
    """(bytes, content type); NotFound for a malformed hash, an unknown one, or another user's."""
    try:
        check_hash(sha256)
    except ValueError:
        raise NotFound(f"no artifact {sha256[:80]!r}") from None
    with app.Session() as s:
        owned = s.scalar(select(ArtifactRef.sha256).join(Execution, Execution.id == ArtifactRef.execution_id)
                         .where(ArtifactRef.sha256 == sha256, Execution.user_id == user_id).limit(1))
    if owned is None:
        raise NotFound(f"no artifact {sha256!r}")
    try:
        return app.artifacts.load(sha256)
    except ArtifactNotFound:
        raise NotFound(f"artifact {sha256!r} is recorded but its bytes are missing from the store") from None
