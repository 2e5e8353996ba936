"""The sweep: executions left ``running`` by a process that died are marked failed, without waiting for
their strategy to run again.

Every run of a strategy holds its strategy lock from before its execution row is created until the row is
finished, and the lock dies with its process (``trading/locks.py``). So an execution still ``running``
whose lock we can take has no live process behind it: it is marked failed ("interrupted"), and its
schedule slot (if it was scheduled) failed with the same reason. A lock held anywhere — by another thread
of this process, another process, another host on PostgreSQL — means the run is alive: it is not touched.
Replays run without the strategy lock, so they are never swept.

It also settles slots claimed but never started (their dispatcher's process ended with them queued, or no
worker took the task): once past the grace window such a slot could no longer start anyway
(``scheduler.run_slot`` refuses late starts), so it is recorded as skipped with the reason.

Called every ``TRADETRAIL_SWEEP_INTERVAL_S`` by the embedded dispatcher and by Celery beat.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from tradetrail.db.models import Execution, ScheduleSlot
from tradetrail.db.types import utcnow
from tradetrail.notify import outbox
from tradetrail.trading.locks import strategy_lock

log = logging.getLogger(__name__)

UNLOCKED_TRIGGERS = ("replay",)  # runs that do not take the strategy lock (every other trigger does)
REASON = "interrupted: the process running it ended before it finished (found by the sweep)"
NEVER_STARTED = ("claimed but not started within the grace window (the process that claimed it ended, or no "
                 "worker took it); not run late (found by the sweep)")


def sweep_interrupted(app) -> list[str]:
    """Mark every orphaned ``running`` execution failed; return their ids."""
    with app.Session() as s:
        suspects = set(s.scalars(select(Execution.strategy_id).where(
            Execution.status == "running", Execution.trigger.not_in(UNLOCKED_TRIGGERS))).all())
        suspects |= set(s.scalars(select(ScheduleSlot.strategy_id).where(ScheduleSlot.status == "running")).all())
    swept: list[str] = []
    for strategy_id in sorted(suspects):
        with strategy_lock(app, strategy_id) as held:
            if held:  # nobody runs it: whatever is still "running" of it is an orphan
                swept += _mark(app, strategy_id)
    _settle_never_started(app)
    return swept


def _settle_never_started(app) -> list[int]:
    cutoff = utcnow() - timedelta(seconds=app.settings.schedule_grace_s)
    with app.engine.begin() as conn:
        ids = conn.execute(update(ScheduleSlot).where(ScheduleSlot.status == "claimed",
                                                      ScheduleSlot.scheduled_for < cutoff)
                           .values(status="skipped", reason=NEVER_STARTED).returning(ScheduleSlot.id)).scalars().all()
        for slot_id in ids:  # committed with the slots they report
            outbox.slot_missed(conn, slot_id, NEVER_STARTED)
    if ids:
        log.warning("sweep: slots %s were claimed but never started; recorded as skipped", ids)
    return list(ids)


def _mark(app, strategy_id: int) -> list[str]:
    now = utcnow()
    with app.engine.begin() as conn:
        ids = list(conn.execute(select(Execution.id).where(
            Execution.strategy_id == strategy_id, Execution.status == "running",
            Execution.trigger.not_in(UNLOCKED_TRIGGERS))).scalars())
        if ids:
            conn.execute(update(Execution).where(Execution.id.in_(ids), Execution.status == "running")
                         .values(status="failed", finished_at=now, error=REASON))
            for execution_id in ids:  # the trader hears of a run that died as of one that failed
                outbox.execution_failed(conn, execution_id, None, REASON)
        slots = conn.execute(update(ScheduleSlot).where(
            ScheduleSlot.strategy_id == strategy_id, ScheduleSlot.status == "running")
            .values(status="failed", reason=REASON).returning(ScheduleSlot.id)).scalars().all()
        for slot_id in slots:  # a slot whose run never got an execution row
            outbox.slot_missed(conn, slot_id, REASON)
    if ids or slots:
        log.warning("sweep: strategy %s: executions %s and slots %s were left running by a process that ended",
                    strategy_id, ids, slots)
    return ids
