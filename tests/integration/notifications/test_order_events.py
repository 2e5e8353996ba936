"""Order events in the outbox: a bracket sent is one "order sent" (its entry's), while its stop or target
filling or being cancelled is heard of like any order."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.notify import outbox


def _leg(leg: str, side: str, parent: str | None, order_id: int):
    return SimpleNamespace(id=order_id, user_id=None, leg=leg, side=side, quantity=5.0, symbol="SPX",
                           account="SIM000001", avg_fill_price=None, parent_client_order_id=parent)


def test_a_bracket_sent_is_one_message_and_its_stop_filling_is_another(app):
    user_id, _ = demo(app)
    entry, stop, target = (_leg("entry", "BUY", None, 1), _leg("stop", "SELL", "tt-e", 2),
                           _leg("target", "SELL", "tt-e", 3))
    for leg in (entry, stop, target):
        leg.user_id = user_id
    with app.Session() as s:
        for leg in (entry, stop, target):
            outbox.order_event(s, leg, "SUBMITTED", "accepted")
        stop.avg_fill_price = 1170.0
        outbox.order_event(s, stop, "FILLED", "")
        outbox.order_event(s, target, "CANCELLED", "parent filled")
        s.commit()
        events = s.execute(select(NotifyEvent.kind, NotifyEvent.text).order_by(NotifyEvent.id)).all()
    assert [kind for kind, _ in events] == ["order_sent", "order_filled", "order_cancelled"]
    assert events[0].text == "Order sent: BUY 5 SPX (entry, SIM000001): accepted"
    assert events[1].text == "Order FILLED: SELL 5 SPX @ 1170 (stop, SIM000001)"
