"""The lineage recorder: one row per step, written and committed as soon as the step ends.

Rows stay small: an input or output whose JSON is larger than ``SPILL_BYTES`` goes to the artifact store
and the row keeps ``{"$artifact": <sha256>, "bytes": n}``. The insert is a single pre-built Core statement
per step (no ORM unit of work), which keeps recording well under a millisecond on SQLite. Input, output and
metadata are encoded once: the text measured for the spill decision is the text stored (the column type
would encode each a second time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, bindparam, cast, insert, update
from sqlalchemy.dialects.postgresql import JSONB

from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.db.account_models import ArtifactRef
from tradetrail.db.models import Execution, LineageStep
from tradetrail.db.upsert import insert_ignore_many
from tradetrail.notify import outbox
from tradetrail.workflow.jsonable import dumps, to_jsonable

SPILL_BYTES = 16_384

_ENCODED = ("input", "output", "metadata")  # bound as the JSON text already made


def _insert(dialect: str):
    """The lineage insert taking the encoded columns as text (PostgreSQL: cast to its JSONB column)."""
    def text_of(name: str):
        param = bindparam(name, type_=Text)
        return cast(param, JSONB) if dialect == "postgresql" else param
    return insert(LineageStep.__table__).values({name: text_of(name) for name in _ENCODED})


_INSERTS = {name: _insert(name) for name in ("sqlite", "postgresql")}  # the two backends supported


class LineageRecorder:
    def __init__(self, engine: Engine, artifacts: ArtifactRegistry):
        self.engine = engine
        self.artifacts = artifacts

    def _small(self, value: dict[str, Any], spilled: list[str]) -> str:
        """The JSON text stored for ``value``: itself, or a reference to the artifact holding it."""
        text = dumps(to_jsonable(value))
        if len(text) <= SPILL_BYTES:
            return text
        digest = self.artifacts.save(text.encode(), "application/json")
        spilled.append(digest)
        return dumps({"$artifact": digest, "bytes": len(text)})

    def record_step(self, *, execution_id: str, number: int, name: str, status: str, input: dict,
                    output: dict, meta: dict, artifacts: dict[str, str], error: str | None,
                    traceback: str | None, started_at: datetime, duration_ms: float) -> None:
        spilled: list[str] = []
        row = dict(execution_id=execution_id, step_number=number, step_name=name, status=status,
                   input=self._small(input, spilled), output=self._small(output, spilled),
                   metadata=self._small(meta, spilled), artifacts=dict(artifacts), error=error,
                   traceback=traceback, started_at=started_at, duration_ms=round(duration_ms, 3))
        with self.engine.begin() as conn:
            conn.execute(_INSERTS[conn.dialect.name], row)
            # who may read these artifacts: the owner of this execution (see services/runs/artifacts.py)
            insert_ignore_many(conn, ArtifactRef.__table__, [
                dict(sha256=digest, execution_id=execution_id) for digest in sorted({*artifacts.values(), *spilled})],
                key=["sha256", "execution_id"])

    def finish_execution(self, execution_id: str, *, status: str, finished_at: datetime, duration_ms: float,
                         failed_step: str | None = None, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(Execution).where(Execution.id == execution_id).values(
                status=status, finished_at=finished_at, duration_ms=round(duration_ms, 3),
                failed_step=failed_step, error=error))
            if status == "failed":  # the notification is committed with the failure it reports
                outbox.execution_failed(conn, execution_id, failed_step, error)
