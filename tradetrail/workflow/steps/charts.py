"""render_charts: one PNG per timeframe, stored as an artifact the browser and the model both use."""

from __future__ import annotations

from tradetrail.analyst.port import ChartImage
from tradetrail.charts.render import render_chart
from tradetrail.workflow.context import RunContext, StepOutcome


def artifact_url(sha256: str) -> str:
    return f"/api/artifacts/{sha256}"


def render_charts(ctx: RunContext) -> StepOutcome:
    charts = ctx.config.charts
    ctx.step_input.update(enabled=charts.enabled, timeframes=list(ctx.bars))
    if not charts.enabled:
        return StepOutcome(output={"reason": "charts disabled in the strategy"}, status="skipped")
    out = {}
    window = {"daily": charts.daily_bars, "weekly": charts.weekly_bars}
    for timeframe, bars in ctx.bars.items():
        title = f"{ctx.contract.symbol} {timeframe}"
        png = render_chart(bars, ctx.indicators[timeframe], title=title, max_bars=window[timeframe])
        digest = ctx.save_artifact(f"chart_{timeframe}", png, "image/png")
        ctx.charts[timeframe] = ChartImage(timeframe=timeframe, png=png, sha256=digest)
        out[timeframe] = {"sha256": digest, "bytes": len(png), "url": artifact_url(digest),
                          "bars_shown": min(len(bars), window[timeframe])}
    return StepOutcome(output=out)
