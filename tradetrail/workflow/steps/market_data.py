"""fetch_market_data: daily bars up to the as-of time, and weekly bars resampled from them.

Stale bars fail here (more sessions closed since the newest bar than ``market_data.max_bar_age_sessions``,
naming both dates), and so do too few bars for the configured indicators, with the number needed; bars are
stored as an artifact so the run can be replayed without asking the source again.
"""

from __future__ import annotations

from tradetrail.catalogue.calendars import sessions_closed_between
from tradetrail.domain.bars import BarsError, bars_to_json, point_in_time, resample_weekly
from tradetrail.domain.market_hours import EXCHANGE_TZ
from tradetrail.marketdata.port import MarketDataError
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.memo import bars_memo, frame_key


def _summary(frame) -> dict:
    if frame.empty:
        return {"count": 0}
    return {"count": len(frame), "first": frame.index[0].isoformat(), "last": frame.index[-1].isoformat(),
            "last_close": float(frame["close"].iloc[-1])}


def _check_fresh(ctx: RunContext, daily, max_age: int) -> None:
    """Fail when more than ``max_age`` exchange sessions closed between the newest bar and the as-of time
    (a replay-clock run's as-of is the newest bar's own session: age 0)."""
    newest = daily.index[-1].to_pydatetime()
    age, exact = sessions_closed_between(newest, ctx.as_of)
    ctx.step_meta["bar_age_sessions"] = age
    if age > max_age:
        local = newest.astimezone(EXCHANGE_TZ).date(), ctx.as_of.astimezone(EXCHANGE_TZ).date()
        raise StepError(f"stale market data: the newest daily bar of {ctx.contract.symbol} is from {local[0]} and the "
                        f"run is as of {local[1]}; {'' if exact else 'at least '}{age} NYSE sessions closed in "
                        f"between, more than market_data.max_bar_age_sessions ({max_age})",
                        output={"daily": _summary(daily), "newest_bar": newest.isoformat(),
                                "as_of": ctx.as_of.isoformat(), "age_sessions": age,
                                "max_bar_age_sessions": max_age})


def fetch_market_data(ctx: RunContext) -> StepOutcome:
    cfg = ctx.config
    md = cfg.market_data
    source = ctx.app.market_data(md.source)
    warmup = cfg.indicators.warmup_bars()
    need_daily = max(md.min_daily_bars, warmup)
    ctx.step_input.update(source=source.name, symbol=ctx.contract.symbol, as_of=ctx.as_of.isoformat(),
                          lookback_days=md.lookback_days, min_daily_bars=need_daily,
                          confirmation_timeframe=md.confirmation_timeframe)
    try:
        daily = source.daily_bars(ctx.contract, as_of=ctx.as_of, lookback=md.lookback_days)
    except (MarketDataError, BarsError) as exc:
        raise StepError(f"market data from {source.name} failed: {exc}") from exc
    daily = point_in_time(daily, ctx.as_of)  # the adapter's promise, enforced here too
    if len(daily):
        _check_fresh(ctx, daily, md.max_bar_age_sessions)
    if len(daily) < need_daily:
        raise StepError(f"not enough daily bars: need at least {need_daily} (indicators need {warmup}, "
                        f"minimum {md.min_daily_bars}), got {len(daily)}", output={"daily": _summary(daily)})
    ctx.bars["daily"] = daily
    out = {"daily": _summary(daily)}
    key = frame_key("daily", daily)  # the stored JSON and the weekly bars are computed once per content
    ctx.save_artifact("bars_daily", bars_memo.get(f"{key}:json", lambda: bars_to_json(daily)), "application/json")
    if md.confirmation_timeframe == "weekly":
        weekly = bars_memo.get(f"{key}:weekly", lambda: resample_weekly(daily))
        if len(weekly) < warmup:
            raise StepError(f"not enough weekly bars: need at least {warmup} for the indicators, got "
                            f"{len(weekly)} (raise lookback_days or drop the confirmation timeframe)",
                            output=out | {"weekly": _summary(weekly)})
        ctx.bars["weekly"] = weekly
        out["weekly"] = _summary(weekly) | {"resampled_from": "daily"}
    return StepOutcome(output=out)
