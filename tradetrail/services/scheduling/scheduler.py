"""The dispatcher: turns due schedule slots into executions, exactly once per slot.

Policy (documented in the README):
- A slot is claimed by inserting ``(strategy, scheduled_for)`` under a unique key; only the inserter runs
  it, so any number of dispatchers may race. A slot is never claimed before its time.
- Missed slots (the service was down): only the latest one runs, and only if it is at most
  ``TRADETRAIL_SCHEDULE_GRACE_S`` (10 min) late; every other missed slot of the last 7 days is recorded as
  skipped with the reason. Slots older than 7 days are not recorded.
- A slot whose strategy is still running (its previous execution holds the strategy lock) is skipped with
  that reason: runs never overlap and never queue up.
- A dispatcher claims at most ``limit`` slots per pass (what its workers can take on): the rest stay due and
  unclaimed for the next pass or another process, the strategy waiting longest first. A slot left unclaimed
  past the grace window (a box too busy for its schedule) is skipped with the reason, like a missed one.
- A claimed slot is checked again when a worker starts it, under the strategy's lock: one that waited past
  the grace window, or whose strategy already has a later slot, is skipped with the reason. A slot never
  runs late and never after a newer one of its strategy, whichever process or worker holds it.
- ``claimed_by`` is ``host:pid`` of the process that claimed the slot, replaced by the process that runs it
  when it starts (with Celery, the dispatcher and the run are in different processes).
- A slot task that fails before its run starts (nothing has run) is tried again, then the slot is settled
  with the reason (:func:`start_failed`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Text, bindparam, cast, func, select, update

from tradetrail.catalogue.calendars import calendar
from tradetrail.db.models import ScheduleSlot, Strategy, StrategyVersion
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore
from tradetrail.domain.schedule import ScheduleError, due_between, fire_times
from tradetrail.notify import outbox
from tradetrail.observability.metrics import scheduler_lag
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.trading.locks import strategy_lock
from tradetrail.workflow.memo import Memo

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=7)
_HOST = socket.gethostname()


def who() -> str:
    """``host:pid`` of the calling process, read at each call: a forked pool process has its own pid, which
    a value computed at import (in the parent, before the fork) would not show."""
    return f"{_HOST}:{os.getpid()}"


# Per-slot statements built once (each scheduled execution runs them; building one costs more CPU than the
# database takes to run it).
_SS = ScheduleSlot.__table__
_SLOT_ID = select(_SS.c.id).where(_SS.c.strategy_id == bindparam("strategy"), _SS.c.scheduled_for == bindparam("at"))
_SLOT_AT = select(_SS.c.scheduled_for).where(_SS.c.id == bindparam("slot"))
_LATER = select(func.max(_SS.c.scheduled_for)).where(_SS.c.strategy_id == bindparam("strategy"),
                                                     _SS.c.scheduled_for > bindparam("at"))
_CAS = (update(_SS).where(_SS.c.id == bindparam("cas_slot"), _SS.c.status == bindparam("cas_expected"))
        .returning(_SS.c.id))


def _claim(app, strategy_id: int, at: datetime, status: str, reason: str | None = None) -> int | None:
    """Insert the slot; return its id if we inserted it (we own it), None if someone else already did."""
    with app.engine.begin() as conn:
        inserted = insert_ignore(conn, ScheduleSlot.__table__, dict(
            strategy_id=strategy_id, scheduled_for=at, status=status, claimed_by=who(), claimed_at=utcnow(),
            reason=reason), key=["strategy_id", "scheduled_for"])
        if not inserted:
            return None
        slot_id = conn.execute(_SLOT_ID, {"strategy": strategy_id, "at": at}).scalar()
        if status == "skipped":  # committed with the slot it reports
            outbox.slot_missed(conn, slot_id, reason)
        return slot_id


# A pass over 1,000 strategies spent ~0.6 s validating configurations (croniter checks every cron) and
# building croniter objects; both depend only on their inputs, so each is done once per distinct input.
# (Then ~0.1 s parsing and re-serializing the configurations to key the memo: it now hashes the stored text.)
_configs = Memo(8192)  # keyed by content (never by row ids: ids are reused)
_first_fire = Memo(8192)


def _validated(raw: dict) -> StrategyConfig | None:
    try:
        return StrategyConfig.model_validate(raw)
    except ValueError:
        return None


def _next_after(sched, after: datetime) -> datetime | None:
    """The first fire time after ``after`` (None if it cannot be computed: the full path reports why)."""
    try:
        return next(fire_times(sched.cron, sched.timezone, after,
                               calendar=calendar() if sched.market_sessions_only else None), None)
    except ScheduleError:
        return None


def _scheduled(app) -> list[tuple[Strategy, StrategyConfig, datetime]]:
    with app.Session() as s:
        # the configuration as stored text: hashed for the memo, parsed only when the memo has not seen it
        rows = s.execute(select(Strategy, cast(StrategyVersion.config, Text)).join(
            StrategyVersion, (StrategyVersion.strategy_id == Strategy.id)
            & (StrategyVersion.version == Strategy.current_version)).where(Strategy.enabled.is_(True))).all()
        last = dict(s.execute(select(ScheduleSlot.strategy_id, func.max(ScheduleSlot.scheduled_for))
                              .group_by(ScheduleSlot.strategy_id)).all())
    out = []
    for strategy, text in rows:
        key = hashlib.sha256(text.encode()).hexdigest()
        config = _configs.get(key, lambda text=text: _validated(json.loads(text)))
        if config is None:
            log.warning("strategy %s has a configuration that no longer validates; not scheduled", strategy.name)
            continue
        if config.schedule.cron:
            out.append((strategy, config, last.get(strategy.id) or strategy.created_at))
    return out


def dispatch(app, now: datetime, submit: Callable[[Strategy, int], None], limit: int | None = None,
             accept: Callable[[StrategyConfig], bool] | None = None,
             stopping: Callable[[], bool] | None = None) -> dict:
    """Claim what is due at ``now``; hand each slot we own and may run to ``submit(strategy, slot_id)``.

    ``limit``: claim at most this many slots to run in this pass (skipped ones do not count). Due strategies
    are taken longest-waiting first (by the first fire time since their last slot) and, among equals, in
    random order, so dispatchers in several processes rarely reach for the same slot at once. ``accept``:
    only strategies it accepts are claimed here (others are left for a dispatcher that takes them).
    ``stopping``: checked before each claim; the pass ends when it says so."""
    grace = timedelta(seconds=app.settings.schedule_grace_s)
    report = {"claimed": 0, "skipped": 0, "errors": []}
    due = []
    for strategy, config, last in _scheduled(app):
        sched = config.schedule
        first = _first_fire.get((sched.cron, sched.timezone, sched.market_sessions_only, last),
                                lambda sched=sched, last=last: _next_after(sched, last))
        if first is not None and first > now:
            continue  # nothing due since its last slot
        if accept is not None and not accept(config):
            continue
        due.append((first or now, random.random(), strategy, config, last))
    due.sort(key=lambda d: d[:2])
    for _, _, strategy, config, last in due:
        if (limit is not None and report["claimed"] >= limit) or (stopping is not None and stopping()):
            break
        sched = config.schedule
        try:
            times = due_between(sched.cron, sched.timezone, max(last, now - LOOKBACK), now,
                                calendar=calendar() if sched.market_sessions_only else None)
        except ScheduleError as exc:
            report["errors"].append(f"{strategy.name}: {exc}")
            continue
        if not times:
            continue
        for t in times[:-1]:
            if _claim(app, strategy.id, t, "skipped", "missed (the service was down or too busy to start it); "
                                                     "only the latest missed slot runs"):
                report["skipped"] += 1
        latest = times[-1]
        if now - latest > grace:
            if _claim(app, strategy.id, latest, "skipped", f"missed by {now - latest}, more than the grace "
                                                          f"window of {grace}"):
                report["skipped"] += 1
            continue
        slot_id = _claim(app, strategy.id, latest, "claimed")
        if slot_id is not None:
            report["claimed"] += 1
            submit(strategy, slot_id)
    return report


def run_slot(app, strategy: Strategy, slot_id: int, steps=None, now: datetime | None = None) -> str:
    """Execute one claimed slot and record how it ended (runs in a worker; ``steps``: the pipeline as the
    worker wraps it, default the plain one; ``now``: the time it starts, default the clock).

    Safe to call twice for one slot (a redelivered task): only the call that moves the slot from
    ``claimed`` to ``running`` runs it, under the strategy's lock."""
    from tradetrail.services.runs.executions import execute_locked

    with strategy_lock(app, strategy.id) as held:
        if not held:
            _set(app, slot_id, "claimed", status="skipped",
                 reason=f"strategy {strategy.name!r} is already running: runs never overlap")
            return "skipped"
        started = now or utcnow()
        stale, due_at = _stale(app, strategy.id, slot_id, started)
        if stale:
            return "skipped" if _set(app, slot_id, "claimed", status="skipped", reason=stale) else "taken"
        if not _set(app, slot_id, "claimed", status="running", claimed_by=who()):  # now: who runs it
            return "taken"
        if due_at is not None:  # read by _stale already: the lag costs no query
            scheduler_lag((started - due_at).total_seconds(), app.settings.executor)
        try:
            summary = execute_locked(app, strategy, trigger="schedule", steps=steps,
                                     on_start=lambda eid: _set(app, slot_id, "running", execution_id=eid))
        except Exception as exc:  # noqa: BLE001 - recorded on the slot; the execution (if any) has its lineage
            log.exception("scheduled run of %s failed", strategy.name)
            _set(app, slot_id, "running", status="failed", reason=f"{type(exc).__name__}: {exc}")
            return "failed"
        # Still under the lock: a slot is "running" only while its lock is held, which is how the sweep
        # tells a live run from an orphan (settled after the release, a sweep in between failed it).
        _set(app, slot_id, "running", status="done" if summary.status != "failed" else "failed",
             reason=summary.error)
    return summary.status


def _stale(app, strategy_id: int, slot_id: int, now: datetime) -> tuple[str | None, datetime | None]:
    """Why a claimed slot must not start now (None if it may): it waited too long, or a later one exists;
    and the slot's due time (None if the slot is gone)."""
    grace = timedelta(seconds=app.settings.schedule_grace_s)
    with app.engine.connect() as conn:
        at = conn.scalar(_SLOT_AT, {"slot": slot_id})
        if at is None:
            return None, None  # gone: the compare-and-set that follows finds nothing to run
        later = conn.scalar(_LATER, {"strategy": strategy_id, "at": at})
    if later is not None:
        return (f"a later slot of this strategy ({later.isoformat()}) was claimed first: an older one never "
                "runs after it"), at
    if now - at > grace:
        return (f"not started until {now - at} after its time, more than the grace window of {grace}: "
                "not run late"), at
    return None, at


def run_claimed_slot(app, slot_id: int) -> str:
    """A worker's entry point for a slot id, however many times it is delivered."""
    with app.Session() as s:
        slot = s.get(ScheduleSlot, slot_id)
        strategy = s.get(Strategy, slot.strategy_id) if slot else None
    if slot is None or strategy is None:
        return "missing"
    if slot.status == "claimed":
        return run_slot(app, strategy, slot_id)
    if slot.status == "running":  # delivered again: the worker that ran it was lost, or is still running it
        from tradetrail.services.runs.executions import mark_interrupted

        with strategy_lock(app, strategy.id) as held:
            if not held:
                return "still running"
            mark_interrupted(app, strategy.id)
            _set(app, slot_id, "running", status="failed",
                 reason="the worker running it was lost; not run again (an order path is never repeated blindly)")
            return "failed"
    return slot.status  # already settled: a duplicate delivery does nothing


def release_slot(app, slot_id: int, reason: str) -> bool:
    """A claimed slot that will not be started (its dispatcher is stopping): recorded as skipped."""
    return _set(app, slot_id, "claimed", status="skipped", reason=reason)


def start_failed(settings, slot_id: int, exc: BaseException, attempt: int) -> float | None:
    """A slot's task failed before its run started (the app could not be built, the database or the lock
    was out of reach). Returns the seconds to wait before trying again, or None when it is not tried again:
    the slot had started (its own run recorded the outcome), or this was the last of
    ``TRADETRAIL_SLOT_START_ATTEMPTS``, in which case the slot is recorded failed with the reason now (not
    ten minutes later by the sweep). Trying again is safe: a slot runs only from ``claimed`` to ``running``
    by compare-and-set, so a second attempt can never run what the first one started."""
    from tradetrail.db.failure_text import one_line
    from tradetrail.db.session import engine_for

    reason = one_line(exc)
    engine = engine_for(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            status = conn.execute(select(ScheduleSlot.status).where(ScheduleSlot.id == slot_id)).scalar()
    except Exception:  # noqa: BLE001 - the database itself is out of reach: nothing can have started
        status = "claimed"
    if status != "claimed":  # gone, or started: its run (or the sweep) records how it ended
        log.error("slot %s (%s) failed after it left 'claimed': %s", slot_id, status or "no longer exists", reason)
        return None
    if attempt < settings.slot_start_attempts:
        delay = float(min(2 ** attempt, 60))
        log.warning("slot %s could not start (attempt %d of %d): %s; trying again in %.0f s", slot_id, attempt,
                    settings.slot_start_attempts, reason, delay)
        return delay
    why = f"not started: {attempt} attempt(s) failed before the run began; the last: {reason}"
    try:
        settled = _cas(engine, slot_id, "claimed", status="failed", reason=why)
    except Exception:  # noqa: BLE001 - logged; the sweep settles it once the database is back
        log.exception("slot %s could not be recorded as failed (%s)", slot_id, why)
        return None
    if settled:
        log.error("slot %s recorded failed: %s", slot_id, why)
    return None


def _set(app, slot_id: int, expected: str, **values) -> bool:
    """Compare-and-set on the slot's status; True if the slot was in ``expected`` and is now updated."""
    return _cas(app.engine, slot_id, expected, **values)


def _cas(engine, slot_id: int, expected: str, **values) -> bool:
    with engine.begin() as conn:  # the SET clause is ``values``' columns
        done = conn.execute(_CAS, {"cas_slot": slot_id, "cas_expected": expected, **values}).first() is not None
        if done and values.get("status") in ("skipped", "failed"):  # a slot that will not run (or did not finish
            outbox.slot_missed(conn, slot_id, values.get("reason"))  # without an execution of its own)
        return done
