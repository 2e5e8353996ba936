"""Executions: the filtered list (and the schedule slots skipped or lost beside it), the lineage viewer (one
card per recorded step, live over SSE while the run is going), replay with its comparison, and "run now"."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tradetrail.services.runs import lineage
from tradetrail.services.runs import search as execution_search
from tradetrail.services.runs.executions import AlreadyRunning, get_execution, replay_execution
from tradetrail.services.runs.run_now import Busy, start_run
from tradetrail.services.scheduling.slots import lost_slots
from tradetrail.services.strategies.names import strategy_names
from tradetrail.web.lineage_view import StepExtras, step_template
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageError, PageUser
from tradetrail.web.templating import render, render_text

router = page_router()
PAGE = 50
LOST_SLOTS = 20
POLL_S = 0.5  # how often a live viewer's stream looks for new steps
HEARTBEAT_S = 15.0
MAX_STREAM_S = 300.0  # then the browser reconnects by itself (Last-Event-ID: no step is sent twice)
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
ExecutionId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise PageError(400, "Bad filter", f"{what} must be one of {', '.join(allowed)}")
    return value


def _date(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Bad filter", f"{what} must be a date (YYYY-MM-DD)") from None


@router.get("/executions")
def executions(request: Request, user: PageUser,
               strategy: Annotated[str | None, Query(max_length=100)] = None,
               status: Annotated[str | None, Query(max_length=20)] = None,
               trigger: Annotated[str | None, Query(max_length=20)] = None,
               started_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
               started_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    app = request.app.state.app
    filters = {"strategy": strategy or None, "status": _choice(status, execution_search.STATUSES, "status"),
               "trigger": _choice(trigger, execution_search.TRIGGERS, "trigger"),
               "started_from": _date(started_from, "from"), "started_to": _date(started_to, "to")}
    rows = execution_search.search(app, user.user_id, **filters, limit=PAGE + 1, offset=offset)
    names = sorted(strategy_names(app, user.user_id).values())
    # schedule slots that never became a run (skipped, lost): not executions, so listed beside them
    lost = lost_slots(app, user.user_id, strategy=strategy if strategy in names else None, limit=LOST_SLOTS)
    query = {"strategy": strategy or "", "status": status or "", "trigger": trigger or "",
             "from": started_from or "", "to": started_to or ""}
    return render(request, "executions.html", rows=rows[:PAGE], more=len(rows) > PAGE, offset=offset, page=PAGE,
                  query=query, strategies=names, statuses=execution_search.STATUSES,
                  triggers=execution_search.TRIGGERS, lost_slots=lost)


def _context(app, user_id: int, execution_id: str) -> dict:
    execution = get_execution(app, execution_id, user_id=user_id)
    return {"execution": execution, "extras": StepExtras(app, user_id, execution), "step_template": step_template}


def _replay_context(app, user_id: int, execution: dict) -> dict:
    """The original of a replay, or the replays of an original (with whether each reproduced it)."""
    first = execution["steps"][0] if execution["steps"] else None
    if execution["trigger"] == "replay":
        return {"replay_of": (first or {}).get("input", {}).get("replay_of"), "replays": []}
    return {"replay_of": None, "replays": execution_search.replays_of(app, user_id, execution["id"])}


@router.get("/executions/{execution_id}")
def execution(request: Request, execution_id: ExecutionId, user: PageUser) -> Response:
    app = request.app.state.app
    context = _context(app, user.user_id, execution_id)
    context.update(_replay_context(app, user.user_id, context["execution"]))
    return render(request, "execution.html", **context)


@router.get("/executions/{execution_id}/steps/{number}/recorded")
def recorded(request: Request, execution_id: ExecutionId, number: Annotated[int, Path(ge=1, le=1000)],
             user: PageUser) -> Response:
    """One step's recorded data as a fragment: the viewer loads it when its card's details open (the page
    itself stays small and quick)."""
    step = lineage.step(request.app.state.app, user.user_id, execution_id, number)
    return HTMLResponse(render_text("partials/step_recorded.html", step=step, execution_id=execution_id),
                        headers={"Cache-Control": "no-store"})


def _event(name: str, html: str, event_id: int | None = None) -> str:
    lines = [f"event: {name}"] + ([f"id: {event_id}"] if event_id is not None else [])
    lines += [f"data: {line}" for line in html.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


def _new_events(app, user_id: int, execution_id: str, csrf_token: str, after: int) -> tuple[list[str], int, bool]:
    """The cards of steps recorded after step ``after`` as SSE events, the last step number, and whether the
    execution has ended (then a ``done`` event carries its new header)."""
    context = _context(app, user_id, execution_id)
    execution, events = context["execution"], []
    for step in execution["steps"]:
        if step["number"] > after:
            html = render_text("partials/step_card.html", step=step, csrf_token=csrf_token, **context)
            events.append(_event("step", html, step["number"]))
            after = step["number"]
    ended = execution["status"] != "running"
    if ended:
        context.update(_replay_context(app, user_id, execution))
        events.append(_event("done", render_text("partials/execution_head.html", csrf_token=csrf_token,
                                                 **context)))
    return events, after, ended


@router.get("/executions/{execution_id}/events")
async def execution_events(request: Request, execution_id: ExecutionId, user: PageUser,
                           after: Annotated[int, Query(ge=0, le=1000)] = 0) -> Response:
    """Server-sent events: a ``step`` event (the rendered card, ``id`` = its number) for every step recorded
    after ``after`` (or the ``Last-Event-ID`` a reconnecting browser sends), then ``done`` with the header."""
    app = request.app.state.app
    await run_in_threadpool(get_execution, app, execution_id, user_id=user.user_id)  # 404 before streaming
    resume = request.headers.get("last-event-id", "")
    start = max(after, int(resume) if resume.isdigit() and len(resume) < 5 else 0)
    csrf_token = request.state.csrf_token

    async def stream():
        sent, deadline, beat = start, time.monotonic() + MAX_STREAM_S, time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline:
            events, sent, ended = await run_in_threadpool(_new_events, app, user.user_id, execution_id, csrf_token,
                                                          sent)
            for event in events:
                yield event
            if ended:
                return
            if time.monotonic() - beat > HEARTBEAT_S:
                beat = time.monotonic()
                yield ": still running\n\n"
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/executions/{execution_id}/replay")
def replay(request: Request, execution_id: ExecutionId, user: ChangingUser) -> Response:
    """Re-run from the stored bars, prompt versions and cached answer (never a model call, never an order),
    then show the replay, whose last card compares it with the original."""
    replayed = replay_execution(request.app.state.app, user.user_id, execution_id)
    return RedirectResponse(f"/executions/{replayed['id']}", status_code=303)


@router.post("/executions/run")
def run_now(request: Request, user: ChangingUser, form: Form) -> Response:
    """Start the strategy now and open its execution at once: its steps appear there as they finish."""
    name = form.get("strategy", "")
    try:
        execution_id = start_run(request.app.state.app, user.user_id, name)
    except AlreadyRunning as exc:
        raise PageError(409, "Already running", str(exc)) from None
    except Busy as exc:
        raise PageError(503, "Busy", str(exc)) from None
    except RuntimeError as exc:  # it failed before its execution existed: nothing to show but why
        raise PageError(500, "The run could not start", str(exc)) from None
    return RedirectResponse(f"/executions/{execution_id}", status_code=303)
