"""complete: the last step; the executor then stores the execution's status and total duration."""

from __future__ import annotations

import time

from tradetrail.workflow.context import RunContext, StepOutcome


def complete(ctx: RunContext) -> StepOutcome:
    signal = ctx.signal
    return StepOutcome(output={"status": "succeeded", "as_of": ctx.as_of.isoformat(),
                               "signal": signal.action if signal else None,
                               "reason": signal.reason if signal else None,
                               "elapsed_ms": round((time.perf_counter() - ctx.started_perf) * 1000, 3)})
