"""A strategy's configuration: what to watch, how to look at it, when, and how the signal is decided.

Stored as JSON in immutable strategy versions; every execution runs one frozen version. Validation errors
name the field and the reason (pydantic), so the CLI and the API can show them as they are.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradetrail.domain.indicators import IndicatorParams
from tradetrail.domain.risk import RiskLimits
from tradetrail.domain.signal_policy import SignalPolicy

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MarketDataConfig(_Strict):
    source: Literal["sample", "files", "ibkr"] | None = Field(
        default=None, description="market data adapter; empty means the global TRADETRAIL_MARKET_DATA")
    lookback_days: int = Field(default=1500, ge=60, le=10000, description="daily bars fetched per run")
    min_daily_bars: int = Field(default=252, ge=1, le=10000,
                                description="fewer daily bars than this (or than the indicators need) fails")
    confirmation_timeframe: Literal["weekly"] | None = "weekly"
    replay_start: date | None = Field(
        default=None, description="replay clock: the first run sees the market as of this session's close, "
                                  "each later run one session more")


class ChartsConfig(_Strict):
    enabled: bool = True
    daily_bars: int = Field(default=150, ge=20, le=1000)
    weekly_bars: int = Field(default=104, ge=20, le=1000)


class PromptsConfig(_Strict):
    system: str = Field(default="decision", pattern=NAME_PATTERN)
    daily: str = Field(default="daily", pattern=NAME_PATTERN)
    weekly: str = Field(default="weekly", pattern=NAME_PATTERN)


class AnalystConfig(_Strict):
    kind: Literal["auto", "rules", "llm"] = Field(
        default="auto", description="auto: the configured model if TRADETRAIL_LLM_BASE_URL is set, else rules")
    model: str | None = Field(default=None, max_length=200, description="overrides TRADETRAIL_LLM_MODEL")
    prompts: PromptsConfig = PromptsConfig()
    atr_stop_multiple: float = Field(default=2.0, gt=0, le=10, description="rules analyst: stop = entry ∓ k·ATR")
    reward_risk: float = Field(default=2.0, gt=0, le=20, description="rules analyst: target at this many R")


class ScheduleConfig(_Strict):
    cron: str | None = Field(default=None, description="five-field cron in the time zone below")
    timezone: str = "America/New_York"
    market_sessions_only: bool = False

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = " ".join(value.split())
        if len(value.split(" ")) != 5:
            raise ValueError(f"cron must have 5 fields (minute hour day month weekday), got {value!r}")
        if not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        try:  # valid syntax can still never fire, e.g. "0 9 31 2 *"
            croniter(value, datetime(2000, 1, 1), max_years_between_matches=8).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(f"cron expression {value!r} never fires") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class OrdersConfig(_Strict):
    entry_type: Literal["MKT", "LMT"] = Field(
        default="MKT", description="MKT: next open; LMT: at the signal's entry price or better")
    entry_tif: Literal["DAY", "GTC"] = "DAY"
    exit_tif: Literal["DAY", "GTC"] = Field(default="GTC", description="the bracket's stop and take-profit")
    tick_size: float = Field(default=0.01, gt=0, le=100, description="price grid: a long's stop and a buy limit are "
                                                                     "rounded down, its target up")


class StrategyConfig(_Strict):
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-_ ]+$")
    description: str = Field(default="", max_length=2000)
    mode: Literal["paper", "live"] = "paper"
    broker: Literal["simulated", "ibkr_web"] | None = Field(
        default=None, description="the broker this strategy trades at; empty means the global TRADETRAIL_BROKER")
    market_data: MarketDataConfig = MarketDataConfig()
    indicators: IndicatorParams = IndicatorParams()
    charts: ChartsConfig = ChartsConfig()
    analyst: AnalystConfig = AnalystConfig()
    signal_policy: SignalPolicy = SignalPolicy()
    risk: RiskLimits = RiskLimits()
    orders: OrdersConfig = OrdersConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("symbol", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    def to_json(self) -> dict:
        return self.model_dump(mode="json")
