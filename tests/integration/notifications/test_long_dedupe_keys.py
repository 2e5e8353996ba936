"""Long dedupe keys in the outbox: two keys that differ only past the column's width are two events, and the
same long key written twice is one."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.notify import outbox


def test_long_keys_differing_late_are_two_events_and_a_repeat_is_none(app):
    user_id, _ = demo(app)
    base = "denied:1:BUY:2026-11-27:" + ",".join(f"rule_{i}" for i in range(30))
    for key in (base + ",max_exposure", base + ",max_position", base + ",max_exposure"):
        with app.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "risk_denied", key[-12:], "/executions/x", dedupe_key=key)
    with app.Session() as s:
        assert s.scalars(select(NotifyEvent.text).order_by(NotifyEvent.id)).all() == ["max_exposure", "max_position"]
