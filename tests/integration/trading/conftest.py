"""Fixtures of the trading tests: ``two_clocks`` (a replay-clock and a real-clock strategy on one symbol)."""

from tests.support.replay_accounts import two_clocks  # noqa: F401 - the fixture
