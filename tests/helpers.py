"""Small helpers shared by tests (no fakes of our own code here)."""

from __future__ import annotations

from tradetrail.services.app import App
from tradetrail.services.bootstrap import init
from tradetrail.services.strategies import get_strategy


def demo(app: App):
    """Initialise the app (prompts, demo user, demo strategy) and return (user_id, strategy)."""
    info = init(app)
    with app.Session() as s:
        return info["user_id"], get_strategy(s, info["user_id"], "demo")
