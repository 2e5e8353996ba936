"""What ``/health`` reports, so that it notices what stops a deployment that runs unattended: the database,
the broker and the IBKR session, a dispatcher that stopped (Celery beat's dispatch, stamped in Redis by the
dispatch task; the embedded dispatcher's last pass), no live worker consuming the runs queue (the workers'
heartbeats in Redis), schedule slots due and not claimed (or claimed and never started), and executions
stuck ``running``, notifications undelivered past their time or failed for good in the last hour. Any of
them not ok makes the whole report not ok, and each says why. It never raises.

The thresholds are settings: ``TRADETRAIL_HEALTH_MISSED_TICKS`` (intervals without a dispatch, at least
10 s), ``TRADETRAIL_HEALTH_OVERDUE_S`` and ``TRADETRAIL_HEALTH_RUNNING_MAX_S``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import Text, cast, func, select, text

from tradetrail import __version__
from tradetrail.catalogue.calendars import calendar
from tradetrail.db.migrate import current_revision, head_revision
from tradetrail.db.models import Execution, ScheduleSlot, Strategy, StrategyVersion
from tradetrail.db.notify_models import NotifyAttempt, NotifyChannel, NotifyDelivery, NotifyEvent
from tradetrail.db.types import utcnow
from tradetrail.domain.schedule import ScheduleError, fire_times
from tradetrail.observability import heartbeats
from tradetrail.runtime.registries import uses_tws, uses_web_api
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.settings import CONTROL_QUEUE, RUNS_QUEUE
from tradetrail.workflow.memo import Memo

MIN_STALE_S = 10.0  # a sweep or a long pass may hold the control worker (or the dispatcher thread) a while
SHOWN = 5  # names or ids listed per finding
_NC, _ND, _NE, _NA = (NotifyChannel.__table__, NotifyDelivery.__table__, NotifyEvent.__table__,
                      NotifyAttempt.__table__)


def stale_after_s(settings) -> float:
    """Seconds without a dispatcher pass after which the dispatcher counts as stopped."""
    return max(MIN_STALE_S, settings.health_missed_ticks * settings.scheduler_interval_s)


def _database(app) -> dict:
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(app.engine)
        ok = revision == head_revision()
        return {"ok": ok, "revision": revision, "backend": app.engine.dialect.name,
                **({} if ok else {"reason": f"the schema is at {revision}, not {head_revision()}: migrate"})}
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return {"ok": False, "error": type(exc).__name__, "reason": "the database cannot be reached"}


def _broker(app) -> dict:
    try:
        h = app.broker.health()
        return {"ok": h.healthy, **h.to_dict(), **({} if h.healthy else {"reason": h.message or "not healthy"})}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__, "reason": f"the broker did not answer: {exc}"[:300]}


_SESSION_FIELDS = ("epoch", "reopened", "last_reopen", "last_reopen_error", "reopen_reason", "last_tickle",
                   "last_tickle_error")


def _ibkr(app) -> dict:
    """The IBKR session (Client Portal) or connection (TWS / IB Gateway), when this deployment's default broker
    or market data goes through one."""
    s = app.settings
    web, tws = uses_web_api(s.broker, s.market_data), uses_tws(s.broker, s.market_data)
    if not web:
        return _tws(app) if tws else {"ok": True, "used": False}
    if tws:
        both = {"web_api": _web_api(app), "tws": _tws(app)}
        bad = [f"{name}: {c['reason']}" for name, c in both.items() if not c["ok"]]
        return {"ok": not bad, "used": True, **both, **({"reason": "; ".join(bad)} if bad else {})}
    return _web_api(app)


# never the account ids: /health is not authenticated (how many accounts the login manages is enough)
_TWS_FIELDS = ("host", "port", "client_id", "epoch", "ib_connectivity", "farms", "drops", "dropped_at", "last_error",
               "resubscribed", "synced")


def _tws(app) -> dict:
    """The TWS / IB Gateway connection: connected, an account managed, TWS itself connected to IBKR."""
    try:
        conn = app.tws_connection()
        conn.ensure_connected()
        described = conn.describe()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "used": True, "api": "tws", "error": type(exc).__name__,
                "reason": f"TWS / IB Gateway is not connected: {exc}"[:300]}
    out = {"used": True, "api": "tws", "connected": bool(described.get("connected")),
           **{k: described.get(k) for k in _TWS_FIELDS}, "accounts_managed": len(described.get("accounts") or [])}
    lost = out["ib_connectivity"] == "lost"
    out["ok"] = out["connected"] and bool(out["accounts_managed"]) and not lost
    if not out["ok"]:
        out["reason"] = ("TWS has lost its connection to IBKR's servers (1100)" if lost else
                         "TWS lists no managed account: is it logged in?" if out["connected"] else
                         f"TWS / IB Gateway is not connected: {out['last_error'] or 'dropped'}")
    return out


def _web_api(app) -> dict:
    try:
        session = app.ibkr_session()
        described = session.describe()
        status = session.auth_status()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "used": True, "error": type(exc).__name__,
                "reason": f"the IBKR session could not be asked: {exc}"[:300]}
    out = {"used": True, "authenticated": bool(status.get("authenticated")),
           "connected": bool(status.get("connected")), "competing": bool(status.get("competing")),
           **{k: described.get(k) for k in _SESSION_FIELDS if k in described}}
    out["ok"] = out["authenticated"] and out["connected"] and not out["competing"]
    if not out["ok"]:
        out["reason"] = ("another session of this IBKR user is active" if out["competing"] else
                         "the brokerage session is not authenticated: log in to the gateway"
                         if not out["authenticated"] else "the gateway is not connected to IBKR")
    return out


def _scheduler(app, scheduler) -> dict:
    s = app.settings
    if not s.scheduler_enabled:
        return {"ok": True, "mode": "off"}
    limit = stale_after_s(s)
    if s.executor == "celery":
        try:
            age = heartbeats.dispatch_age(heartbeats.client(s.redis_url))
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "mode": "celery", "error": type(exc).__name__,
                    "reason": "Redis cannot be reached: beat's heartbeat cannot be read"}
        out = {"mode": "celery", "last_dispatch_age_s": None if age is None else round(age, 3),
               "stale_after_s": limit}
        if age is None:
            return {**out, "ok": False, "reason": "beat's dispatch has never run: start tradetrail beat and a "
                                                  "worker consuming the control queue"}
        if age > limit:
            return {**out, "ok": False, "reason": f"beat has not dispatched for {age:.0f} s (more than {limit:.0f} "
                                                  "s): is tradetrail beat running, and a worker on the control "
                                                  "queue?"}
        return {**out, "ok": True}
    if scheduler is None:
        return {"ok": True, "mode": "embedded", "running": False, "note": "not started in this process"}
    out = {"mode": "embedded", **scheduler.status(), "interval_s": s.scheduler_interval_s, "stale_after_s": limit}
    age = out.get("last_pass_age_s")
    if not out["running"]:
        out.update(ok=False, reason="the embedded dispatcher has stopped")
    elif age is not None and age > limit:
        out.update(ok=False, reason=f"the embedded dispatcher has not completed a pass for {age:.0f} s "
                                    f"(more than {limit:.0f} s)")
    elif not out["ok"]:
        out["reason"] = "a helper process is down"
    return out


def _queue(app) -> dict:
    s = app.settings
    if s.executor != "celery":
        return {"ok": True, "mode": "embedded", "note": f"executions run in this process"
                f"{f' and {s.embedded_processes - 1} helper process(es)' if s.embedded_processes > 1 else ''}"}
    try:
        client = heartbeats.client(s.redis_url)
        client.ping()
        # A growing control backlog means no worker consumes it: nothing is being dispatched.
        out = {"mode": "celery", "pending": int(client.llen(RUNS_QUEUE)),
               "control_pending": int(client.llen(CONTROL_QUEUE))}
        workers = heartbeats.live_workers(client, RUNS_QUEUE, stale_s=3 * s.worker_heartbeat_s)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "mode": "celery", "error": type(exc).__name__, "reason": "Redis cannot be reached"}
    out["workers"] = workers
    if not workers:
        return {**out, "ok": False, "reason": "no live worker consumes the runs queue (no worker heartbeat in "
                                              f"{3 * s.worker_heartbeat_s:.0f} s): start tradetrail worker"}
    return {**out, "ok": True}


# The same two memos as the dispatcher's (content-keyed), so a health check over 1,000 strategies costs a
# query and a few lookups once warm.
_configs = Memo(8192)
_first_fire = Memo(8192)


def _config(text_: str) -> StrategyConfig | None:
    try:
        return StrategyConfig.model_validate(json.loads(text_))
    except ValueError:
        return None


def _first_after(sched, after):
    try:
        return next(fire_times(sched.cron, sched.timezone, after,
                               calendar=calendar() if sched.market_sessions_only else None), None)
    except ScheduleError:
        return None


def _overdue(app) -> dict:
    """Enabled, scheduled strategies whose first fire time since their last slot is older than
    ``health_overdue_s`` (no dispatcher claimed it), and slots claimed that long ago but never started."""
    s = app.settings
    if not s.scheduler_enabled:
        return {"ok": True, "mode": "off"}
    now = utcnow()
    cutoff = now - timedelta(seconds=s.health_overdue_s)
    try:
        with app.Session() as db:
            rows = db.execute(select(Strategy.id, Strategy.name, Strategy.created_at,
                                     cast(StrategyVersion.config, Text))
                              .join(StrategyVersion, (StrategyVersion.strategy_id == Strategy.id)
                                    & (StrategyVersion.version == Strategy.current_version))
                              .where(Strategy.enabled.is_(True))).all()
            last = dict(db.execute(select(ScheduleSlot.strategy_id, func.max(ScheduleSlot.scheduled_for))
                                   .group_by(ScheduleSlot.strategy_id)).all())
            stuck_claims = db.scalar(select(func.count()).select_from(ScheduleSlot).where(
                ScheduleSlot.status == "claimed", ScheduleSlot.scheduled_for < cutoff))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__, "reason": "the schedule could not be read"}
    overdue = []
    for strategy_id, name, created_at, config_text in rows:
        config = _configs.get(hashlib.sha256(config_text.encode()).hexdigest(), lambda t=config_text: _config(t))
        if config is None or not config.schedule.cron:
            continue
        sched, since = config.schedule, last.get(strategy_id) or created_at
        first = _first_fire.get((sched.cron, sched.timezone, sched.market_sessions_only, since),
                                lambda sched=sched, since=since: _first_after(sched, since))
        if first is not None and first <= cutoff:
            overdue.append((first, name))
    overdue.sort()
    out = {"overdue": len(overdue), "claimed_not_started": int(stuck_claims or 0),
           "overdue_after_s": s.health_overdue_s,
           "oldest_due": overdue[0][0].isoformat() if overdue else None,
           "strategies": [name for _, name in overdue[:SHOWN]]}
    reasons = []
    if overdue:
        reasons.append(f"{len(overdue)} strateg{'y has' if len(overdue) == 1 else 'ies have'} a slot due since "
                       f"{overdue[0][0].isoformat()} or later that no dispatcher claimed within "
                       f"{s.health_overdue_s:.0f} s")
    if stuck_claims:
        reasons.append(f"{stuck_claims} slot(s) claimed more than {s.health_overdue_s:.0f} s after their time and "
                       "never started (no worker took them)")
    return {**out, "ok": not reasons, **({"reason": "; ".join(reasons)} if reasons else {})}


def _stuck(app) -> dict:
    s = app.settings
    cutoff = utcnow() - timedelta(seconds=s.health_running_max_s)
    try:
        with app.Session() as db:
            ids = db.scalars(select(Execution.id).where(Execution.status == "running", Execution.started_at < cutoff)
                             .order_by(Execution.started_at).limit(SHOWN)).all()
            count = len(ids) if len(ids) < SHOWN else db.scalar(select(func.count()).select_from(Execution).where(
                Execution.status == "running", Execution.started_at < cutoff))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__, "reason": "the executions could not be read"}
    out = {"stuck": int(count), "running_max_s": s.health_running_max_s, "oldest": list(ids)}
    if count:
        return {**out, "ok": False, "reason": f"{count} execution(s) running for more than "
                                              f"{s.health_running_max_s:.0f} s (oldest {ids[0]})"}
    return {**out, "ok": True}


FAILED_WINDOW = timedelta(hours=1)  # a delivery that failed for good this recently keeps health degraded


def _notifications(app) -> dict:
    """Messages a trader is waiting for: any still undelivered well past their time (the sender is not running,
    or not keeping up), and any that failed for good in the last hour (a channel is broken). Counts only: the
    report is public, the channels and texts are not."""
    s = app.settings
    now = utcnow()
    late = now - timedelta(seconds=s.health_overdue_s)
    try:
        with app.engine.connect() as conn:
            if conn.execute(select(_NC.c.id).limit(1)).first() is None:
                return {"ok": True, "channels": 0}
            waiting = conn.scalar(select(func.count()).select_from(_ND).where(
                _ND.c.status.in_(("pending", "sending")), _ND.c.next_at < late,
                (_ND.c.lease_until.is_(None)) | (_ND.c.lease_until < now)))
            unfanned = conn.scalar(select(func.count()).select_from(_NE).where(
                _NE.c.fanned_out.is_(False), _NE.c.created_at < late))
            failed = conn.scalar(select(func.count()).select_from(_ND).join(_NA, _NA.c.delivery_id == _ND.c.id)
                                 .where(_ND.c.status == "failed", _NA.c.finished_at >= now - FAILED_WINDOW,
                                        _NA.c.number == _ND.c.attempts))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__, "reason": "the notification outbox could not be read"}
    out = {"overdue": int(waiting) + int(unfanned), "failed_last_hour": int(failed)}
    reasons = []
    if out["overdue"]:
        reasons.append(f"{out['overdue']} notification(s) waiting more than {s.health_overdue_s:.0f} s past their "
                       "time (is the sender running?)")
    if failed:
        reasons.append(f"{failed} notification(s) failed after every attempt in the last hour "
                       "(tradetrail notify list shows each channel's last error)")
    return {**out, "ok": not reasons, **({"reason": "; ".join(reasons)} if reasons else {})}


def health_report(app, *, scheduler=None) -> dict:
    checks = {"database": _database(app), "broker": _broker(app), "ibkr_session": _ibkr(app),
              "scheduler": _scheduler(app, scheduler), "worker_queue": _queue(app),
              "overdue_slots": _overdue(app), "stuck_executions": _stuck(app),
              "notifications": _notifications(app)}
    ok = all(c["ok"] for c in checks.values())
    reasons = [f"{name}: {c.get('reason') or 'not ok'}" for name, c in checks.items() if not c["ok"]]
    return {"status": "ok" if ok else "degraded", "version": __version__, "reasons": reasons, "checks": checks}
