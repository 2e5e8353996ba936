"""render_charts: one PNG per timeframe, stored as an artifact the browser and the model both use.

Charts come through the content-keyed render cache (``tradetrail/charts/cache.py``): strategies on one
symbol draw the same picture at the same minute, and a hit is the same bytes a render would give. Behind
this process's cache, charts drawn by other processes or before a restart are found by render key
(``workflow/chart_store.py``). The output says per timeframe whether it was a hit in this process, a
stored drawing or a miss, and under which render key.
"""

from __future__ import annotations

import time

from tradetrail.analyst.port import ChartImage
from tradetrail.charts.cache import CachedChart, ChartCache, StoredRenders, chart_cache
from tradetrail.workflow.chart_store import ArtifactRenders
from tradetrail.workflow.context import RunContext, StepOutcome


def artifact_url(sha256: str) -> str:
    return f"/api/artifacts/{sha256}"


def chart_windows(charts) -> dict[str, int]:
    """Bars shown per timeframe (``charts.daily_bars``, ``charts.weekly_bars``)."""
    return {"daily": charts.daily_bars, "weekly": charts.weekly_bars}


def draw_chart(symbol: str, timeframe: str, bars, indicators, charts, cache: ChartCache = chart_cache,
               stored: StoredRenders | None = None) -> CachedChart:
    """The chart of one timeframe as the analyst sees it (a backtest with the model analyst draws each
    session's through here, with a cache of its own so it does not push the live runs' charts out)."""
    return cache.render(bars, indicators, title=f"{symbol} {timeframe}", max_bars=chart_windows(charts)[timeframe],
                        stored=stored)


def render_charts(ctx: RunContext) -> StepOutcome:
    charts = ctx.config.charts
    ctx.step_input.update(enabled=charts.enabled, timeframes=list(ctx.bars))
    if not charts.enabled:
        return StepOutcome(output={"reason": "charts disabled in the strategy"}, status="skipped")
    out = {}
    window = chart_windows(charts)
    stored = ArtifactRenders(ctx.app.artifacts)
    for timeframe, bars in ctx.bars.items():
        t0 = time.perf_counter()
        chart = draw_chart(ctx.contract.symbol, timeframe, bars, ctx.indicators[timeframe], charts, stored=stored)
        ms = round((time.perf_counter() - t0) * 1000, 3)
        digest = ctx.save_artifact(f"chart_{timeframe}", chart.png, "image/png")
        ctx.charts[timeframe] = ChartImage(timeframe=timeframe, png=chart.png, sha256=digest)
        out[timeframe] = {"sha256": digest, "bytes": len(chart.png), "url": artifact_url(digest),
                          "bars_shown": min(len(bars), window[timeframe]), "cache": chart.source,
                          "render_key": chart.key, "ms": ms}
    return StepOutcome(output=out)
