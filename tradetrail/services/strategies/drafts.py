"""What a strategy being written would do, before it is saved: its next run times in the exchange's time and
a worked sizing example at the account's equity (the wizard's previews; the saved strategy uses the same
rules: ``domain.schedule`` and ``domain.risk``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tradetrail.db.types import utcnow
from tradetrail.domain.risk import EntryPrice, RiskInputs, evaluate
from tradetrail.domain.schedule import BeyondCalendar, ScheduleError, fire_times
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.trading import portfolio
from tradetrail.trading.trading_accounts import shared_account

REPLAY_EQUITY = 100_000.0  # a replay-clock strategy's own simulated account starts with this much


def draft_next_runs(config: StrategyConfig, count: int = 5) -> dict:
    """The next ``count`` fire times of the draft's schedule (UTC and its time zone); sessions-only skips the
    minutes the exchange is closed. ``problem`` says why there are none."""
    from tradetrail.catalogue.calendars import calendar

    sched = config.schedule
    out = {"cron": sched.cron, "timezone": sched.timezone, "market_sessions_only": sched.market_sessions_only,
           "next": [], "problem": None}
    if not sched.cron:
        out["problem"] = "no schedule: the strategy runs only when started"
        return out
    zone = ZoneInfo(sched.timezone)
    try:
        for t in fire_times(sched.cron, sched.timezone, utcnow(),
                            calendar=calendar() if sched.market_sessions_only else None):
            out["next"].append({"utc": t.isoformat(), "local": t.astimezone(zone).isoformat()})
            if len(out["next"]) >= count:
                break
    except BeyondCalendar as exc:
        if not out["next"]:
            out["problem"] = str(exc)
    except ScheduleError as exc:
        out["problem"] = str(exc)
    return out


def account_equity(app, user_id: int, config: StrategyConfig) -> tuple[float, str]:
    """The equity a draft would size from, and where it comes from."""
    if config.market_data.replay_start is not None:
        return REPLAY_EQUITY, "a replay-clock strategy's own simulated account (starting equity)"
    account = shared_account(app, user_id)
    equity = portfolio.current(app, user_id, account=account)["equity"]
    return float(equity), f"account {account}"


def sizing_example(app, user_id: int, config: StrategyConfig, entry: float, stop: float, target: float) -> dict:
    """The risk gate's answer for a BUY at ``entry`` with ``stop`` and ``target`` under the draft's limits, at
    the account's equity, with the arithmetic (``domain.risk.evaluate``, as a run does, with no position open)."""
    equity, source = account_equity(app, user_id, config)
    inputs = RiskInputs(equity=equity, cash=equity, exposure=0.0, open_positions=0, position_qty=0.0,
                        day_start_equity=equity, consecutive_losses=0)
    decision = evaluate("BUY", entry, stop, target, inputs, config.risk, EntryPrice.limit(entry))
    return {"equity": equity, "equity_source": source, "entry": entry, "stop": stop, "target": target,
            "decision": decision.to_dict()}
