"""Failure drills: ``TRADETRAIL_CRASH_AT=<point>`` kills the process with SIGKILL at that point of the order
path, so crash recovery can be rehearsed and tested on the real code. Unset (always, in normal use), the
check costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

POINTS = ("after_intent_saved", "after_broker_accepted", "before_status_stored")


def crash_point(name: str) -> None:
    if os.environ.get("TRADETRAIL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
