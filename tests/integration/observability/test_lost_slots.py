"""Slots that never became a run are shown, not only executions: `tradetrail runs` and the executions page
list the skipped and lost slots with their reasons, through one service function."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from tests.support.api_client import PASSWORD
from tests.support.cli import tt
from tests.support.helpers import demo
from tests.support.web_http import sign_in, web_client
from tradetrail.db.models import ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.services.accounts.users import set_password
from tradetrail.services.scheduling.scheduler import dispatch, run_claimed_slot
from tradetrail.services.scheduling.slots import lost_slots


def _missed_and_lost(app) -> None:
    """What a service down for six days leaves: missed slots skipped by the next dispatcher pass, and the
    latest one claimed, then lost with its worker (failed)."""
    with app.engine.begin() as conn:
        conn.execute(update(Strategy).values(created_at=utcnow() - timedelta(days=6)))
    report = dispatch(app, utcnow(), lambda strategy, slot_id: None)
    assert report["skipped"] >= 1
    latest = _latest(app)
    with app.engine.begin() as conn:  # a worker took the latest slot and died running it
        conn.execute(update(ScheduleSlot).where(ScheduleSlot.id == latest).values(status="running"))
    assert run_claimed_slot(app, latest) == "failed"  # delivered again: recorded as lost, never run twice


def _latest(app) -> int:
    with app.Session() as s:
        return s.query(ScheduleSlot.id).order_by(ScheduleSlot.scheduled_for.desc()).first()[0]


def test_runs_and_the_executions_page_show_skipped_and_lost_slots(app, cli_env):
    user_id, _ = demo(app)
    _missed_and_lost(app)
    slots = lost_slots(app, user_id, strategy="demo")
    assert {s["status"] for s in slots} == {"skipped", "failed"}
    assert slots[0]["status"] == "failed" and "the worker running it was lost" in slots[0]["reason"]
    assert all(s["reason"] for s in slots)
    assert [s["scheduled_for"] for s in slots] == sorted((s["scheduled_for"] for s in slots), reverse=True)

    shown = tt(cli_env, "runs", "--strategy", "demo").stdout
    assert "slots of demo skipped or lost" in shown and "missed" in shown and "failed" in shown
    assert json.loads(tt(cli_env, "runs", "--strategy", "demo", "--lost", "--json").stdout) == slots
    assert json.loads(tt(cli_env, "runs", "--strategy", "demo", "--json").stdout) == []  # executions as before

    set_password(app, "demo", PASSWORD)
    client = web_client(app)
    sign_in(client)
    page = client.get("/executions").text
    assert 'data-testid="lost-slots"' in page
    assert page.count('data-status="skipped"') + page.count('data-status="failed"') == len(slots)
    assert "the worker running it was lost" in page


def test_no_lost_slot_says_so(app, cli_env):
    demo(app)
    assert "no slot of demo was skipped or lost" in tt(cli_env, "runs", "--strategy", "demo").stdout
    set_password(app, "demo", PASSWORD)
    client = web_client(app)
    sign_in(client)
    assert 'data-testid="no-lost-slots"' in client.get("/executions?strategy=demo").text
