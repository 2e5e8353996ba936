"""Small helpers shared by tests (no fakes of our own code here)."""

from __future__ import annotations

from tradetrail.app_context import App
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.strategies.configs import get_strategy


def demo(app: App):
    """Initialise the app (prompts, demo user, demo strategy) and return (user_id, strategy)."""
    info = init(app)
    with app.Session() as s:
        return info["user_id"], get_strategy(s, info["user_id"], "demo")


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` every 0.1 s until it returns something truthy (returned); fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def demo_account(app: App, user_id: int, strategy) -> str:
    """The simulated account the demo trades on: a replay-clock strategy's own (not the user's shared one)."""
    return app.broker.account(user_id, strategy.id)
