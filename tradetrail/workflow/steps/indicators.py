"""compute_indicators: indicator series per timeframe, their latest values and the 3-of-4 confirmation."""

from __future__ import annotations

import json

from tradetrail.domain.confirmation import confirm
from tradetrail.domain.indicators import compute_indicators as compute
from tradetrail.domain.indicators import latest_values
from tradetrail.workflow.context import RunContext, StepOutcome
from tradetrail.workflow.memo import bars_memo, frame_key


def compute_indicators(ctx: RunContext) -> StepOutcome:
    params = ctx.config.indicators
    ctx.step_input.update(params=params.to_dict(), timeframes=list(ctx.bars),
                          bars={tf: len(b) for tf, b in ctx.bars.items()})
    out: dict = {"latest": {}, "confirmation": {}}
    params_key = json.dumps(params.to_dict(), sort_keys=True)
    for timeframe, bars in ctx.bars.items():  # computed once per (bars, parameters) content: see workflow/memo.py
        frame = bars_memo.get(frame_key("indicators", bars, params_key), lambda bars=bars: compute(bars, params))
        ctx.indicators[timeframe] = frame
        ctx.latest[timeframe] = latest_values(frame, bars)
        ctx.confirmation[timeframe] = confirm(ctx.latest[timeframe])
        out["latest"][timeframe] = ctx.latest[timeframe]
        out["confirmation"][timeframe] = ctx.confirmation[timeframe].to_dict()
    return StepOutcome(output=out)
