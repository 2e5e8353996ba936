"""A strategy's configuration: what to watch, how to look at it, when, and how the signal is decided.

Stored as JSON in immutable strategy versions; every execution runs one frozen version. Validation errors
name the field and the reason (pydantic), so the CLI and the API can show them as they are. Parsing is
strict (no "yes" for true, no "5" for 5) and the JSON schema states every range the configuration refuses;
the few rules a JSON schema cannot state (a cron that never fires, a time zone the system lacks,
``macd_fast < macd_slow``) are named in the field descriptions.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradetrail.analyst.plugins import REF_MAX, PluginError, parse_ref
from tradetrail.domain.indicators import MAX_MA_PERIODS, PARAM_BOUNDS, PERIOD_RANGE, REQUIRED_SMA, IndicatorParams
from tradetrail.domain.market_hours import EXCHANGE_TZ_NAME
from tradetrail.domain.risk import LIMIT_BOUNDS, SIZINGS, RiskLimits
from tradetrail.domain.signal_policy import POLICY_BOUNDS, SignalPolicy
from tradetrail.schemas.domain_fields import bounded
from tradetrail.settings import SIMULATED, BrokerName, MarketDataName

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9.\-_ ]*[A-Za-z0-9.\-_][A-Za-z0-9.\-_ ]*$"  # not blank: spaces around are trimmed
TIMEZONE_MAX = 64
# An IANA zone name as the system's tz database spells it (e.g. America/New_York, Etc/GMT+5, and the aliases
# some systems also ship, such as posix/America/New_York): letters, digits, "_", "+", "-" in "/"-separated parts,
# never "." (no path outside the database). It must then load. (An enum of available_timezones() refused names
# stored by earlier versions on systems that list fewer zones.)
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}$"
CRON_MAX = 100
CRON_FIELD = r"[0-9A-Za-z*/,?#\-]+"
CRON_PATTERN = rf"^\s*({CRON_FIELD}(\s+{CRON_FIELD}){{4}}\s*)?$"  # five fields, or blank (no schedule)
# A plug-in analyst class: package.module:ClassName, an absolute module path.
PLUGIN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
# Any text but control characters (newline, carriage return and tab are text: a description typed in a browser
# textarea arrives with CRLF line ends).
NO_CONTROL_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _periods(description: str, required: int | None) -> Any:
    """A list of distinct periods (a tuple in the dataclass; arrays are lists in JSON)."""
    item = Annotated[int, Field(strict=True, ge=PERIOD_RANGE[0], le=PERIOD_RANGE[1])]
    extra: dict[str, Any] = {"uniqueItems": True}
    if required is not None:
        extra["contains"] = {"const": required}
    return Annotated[list[item], Field(strict=False, max_length=MAX_MA_PERIODS, description=description,
                                       json_schema_extra=extra)]


IndicatorParamsField = bounded(
    IndicatorParams, PARAM_BOUNDS,
    extra={"sma_periods": _periods(f"distinct periods; must include {REQUIRED_SMA} (the 3-of-4 confirmation "
                                   "compares the close with it)", REQUIRED_SMA),
           "ema_periods": _periods("distinct periods", None)},
    doc="Indicator settings. Also refused: macd_fast not less than macd_slow.")
SignalPolicyField = bounded(
    SignalPolicy, POLICY_BOUNDS,
    descriptions={"max_entry_distance_atr": "the entry may lie at most this many ATRs (primary timeframe) from the "
                                            "last close; a stop or target already on the wrong side of the last "
                                            "close also makes the signal HOLD"},
    doc="How an analysis becomes a signal (tradetrail.domain.signal_policy).")
RiskLimitsField = bounded(
    RiskLimits, LIMIT_BOUNDS,
    extra={"sizing": Annotated[Literal[SIZINGS], Field(
        description="risk: each entry risks risk_per_trade_pct of equity down to its stop; fixed: each entry is "
                    "`quantity` units. Either is capped by max_position_pct and cash at the price the order trades "
                    "at. risk needs a stop, so it cannot go with orders.protective none")]},
    descriptions={"quantity": "units per entry when sizing is fixed (ignored with risk sizing)"},
    doc="The risk gate's limits (tradetrail.domain.risk). Also refused: sizing risk with orders.protective none.")


class MarketDataConfig(_Strict):
    source: MarketDataName | None = Field(
        default=None, description="market data adapter; empty means the global TRADETRAIL_MARKET_DATA")
    lookback_days: int = Field(default=1500, ge=60, le=10000, description="daily bars fetched per run")
    min_daily_bars: int = Field(default=252, ge=1, le=10000,
                                description="fewer daily bars than this (or than the indicators need) fails")
    confirmation_timeframe: Literal["weekly"] | None = "weekly"
    max_bar_age_sessions: int = Field(
        default=3, ge=0, le=250,
        description="a run fails when more exchange sessions (NYSE calendar) than this closed after the newest "
                    "daily bar and before the run's as-of time: stale data never trades (0: the latest closed "
                    "session must be there). A replay-clock run sees its own session, so it never trips")
    replay_start: date | None = Field(
        default=None, strict=False,  # an ISO date string in JSON
        description="replay clock: the first run sees the market as of this session's close, each later run one "
                    "session more")

    @field_validator("replay_start", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        """A date, or a string in the schema's date format: not a timestamp number, a datetime or bytes."""
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return value
        raise ValueError(f"replay_start must be a date written YYYY-MM-DD, got {value!r}")


class ChartsConfig(_Strict):
    enabled: bool = True
    daily_bars: int = Field(default=150, ge=20, le=1000)
    weekly_bars: int = Field(default=104, ge=20, le=1000)


class PromptsConfig(_Strict):
    system: str = Field(default="decision", pattern=NAME_PATTERN)
    daily: str = Field(default="daily", pattern=NAME_PATTERN)
    weekly: str = Field(default="weekly", pattern=NAME_PATTERN)


class AnalystConfig(_Strict):
    kind: Literal["auto", "rules", "llm", "plugin"] = Field(
        default="auto", description="auto: the configured model if TRADETRAIL_LLM_BASE_URL is set, else rules; "
                                    "plugin: the class named in plugin")
    plugin: str | None = Field(
        default=None, max_length=REF_MAX, json_schema_extra={"pattern": PLUGIN_PATTERN},
        description="kind plugin: the analyst class as package.module:ClassName (e.g. "
                    "tradetrail.analyst.examples.sma_cross:SmaCross); its module must be allowed by the server's "
                    "TRADETRAIL_ANALYST_PLUGINS (checked when the strategy is saved and when it runs)")
    params: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 50},
        description="kind plugin: keyword arguments for the class (e.g. {\"fast\": 10, \"slow\": 30})")
    model: str | None = Field(default=None, max_length=200, description="overrides TRADETRAIL_LLM_MODEL")
    prompts: PromptsConfig = PromptsConfig()
    atr_stop_multiple: float = Field(default=2.0, gt=0, le=10, description="rules analyst: stop = entry ∓ k·ATR")
    reward_risk: float = Field(default=2.0, gt=0, le=20, description="rules analyst: target at this many R")

    @field_validator("plugin")
    @classmethod
    def _plugin_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_ref(value)
            except PluginError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("params")
    @classmethod
    def _few_params(cls, value: dict) -> dict:
        if len(value) > 50:
            raise ValueError("at most 50 params")
        _check_json_values(value, "params")
        return value

    @model_validator(mode="after")
    def _plugin_named(self) -> AnalystConfig:
        if self.kind == "plugin" and self.plugin is None:
            raise ValueError("analyst kind plugin needs analyst.plugin (package.module:ClassName)")
        return self


def _check_json_values(value: Any, where: str, depth: int = 0) -> None:
    """Plain JSON values only, the way they are stored: no NaN or infinity (stored as null, so the plug-in would
    be built with something else than what was checked), nothing nested deeper than 5 levels."""
    if depth > 5:
        raise ValueError(f"{where}: nested deeper than 5 levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a JSON number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json_values(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_values(item, f"{where}[{i}]", depth + 1)


class ScheduleConfig(_Strict):
    cron: str | None = Field(default=None, max_length=CRON_MAX, json_schema_extra={"pattern": CRON_PATTERN},
                             description="five-field cron in the time zone below; also refused: values out of "
                                         "range and expressions that never fire")
    timezone: str = Field(default=EXCHANGE_TZ_NAME, max_length=TIMEZONE_MAX,
                          json_schema_extra={"pattern": TIMEZONE_PATTERN},
                          description="an IANA time zone name this system's tz database knows")
    market_sessions_only: bool = False

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = " ".join(value.split())
        if len(value.split(" ")) != 5:
            raise ValueError(f"cron must have 5 fields (minute hour day month weekday), got {value!r}")
        if not re.fullmatch(CRON_PATTERN, value) or not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        try:  # valid syntax can still never fire, e.g. "0 9 31 2 *"
            croniter(value, datetime(2000, 1, 1), max_years_between_matches=8).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(f"cron expression {value!r} never fires") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        if not re.fullmatch(TIMEZONE_PATTERN, value):  # never a file name handed to the system unchecked
            raise ValueError(f"unknown time zone {value!r}")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class OrdersConfig(_Strict):
    entry_type: Literal["MKT", "LMT"] = Field(
        default="MKT", description="MKT: next open; LMT: at the signal's entry price or better")
    entry_tif: Literal["DAY", "GTC"] = "DAY"
    exit_tif: Literal["DAY", "GTC"] = Field(default="GTC", description="the bracket's stop and take-profit")
    tick_size: float = Field(default=0.01, gt=0, le=100, description="price grid: a long's stop and a buy limit are "
                                                                     "rounded down, its target up")
    slippage_allowance_pct: float = Field(
        default=2.0, ge=0, le=50, description="a MKT entry is sized (risk, position, exposure and cash caps) at the "
                                              "last price plus this much; a fill beyond it is flagged")
    protective: Literal["bracket", "none"] = Field(
        default="bracket", description="bracket: every entry carries a protective stop and take-profit (a BUY "
                                       "without both is a HOLD); none: the entry is a single order, the position is "
                                       "closed only by a SELL signal, and the signal policy's reward/risk rule does "
                                       "not apply (needs risk.sizing fixed)")


class StrategyConfig(_Strict):
    symbol: str = Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN)
    description: str = Field(default="", max_length=2000, json_schema_extra={"pattern": NO_CONTROL_PATTERN},
                             description="free text; control characters other than newline, carriage return and tab "
                                         "are refused")
    mode: Literal["paper", "live"] = "paper"
    broker: BrokerName | None = Field(
        default=None, description="the broker this strategy trades at; empty means the global TRADETRAIL_BROKER, "
                                  "or the simulator for a replay-clock strategy (market_data.replay_start), which "
                                  "trades on a simulated account of its own and cannot trade anywhere else")
    market_data: MarketDataConfig = MarketDataConfig()
    indicators: IndicatorParamsField = IndicatorParams()
    charts: ChartsConfig = ChartsConfig()
    analyst: AnalystConfig = AnalystConfig()
    signal_policy: SignalPolicyField = SignalPolicy()
    risk: RiskLimitsField = RiskLimits()
    orders: OrdersConfig = OrdersConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("description")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if not re.fullmatch(NO_CONTROL_PATTERN, value):
            bad = next(ch for ch in value if not re.fullmatch(NO_CONTROL_PATTERN, ch))
            raise ValueError(f"control character {bad!r} is not allowed (newline, carriage return and tab are)")
        return value

    @field_validator("symbol", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sizing_fits_protection(self) -> StrategyConfig:
        if self.orders.protective == "none" and self.risk.sizing == "risk":
            raise ValueError("risk.sizing 'risk' sizes an entry from its stop, and orders.protective 'none' sends "
                             "none: set risk.sizing to 'fixed' (with risk.quantity) or orders.protective to "
                             "'bracket'")
        return self

    def replay_broker_problem(self) -> str | None:
        """Why this strategy cannot trade at the broker it names (a replayed market trades only at the
        simulator), or None. Checked when the strategy is saved and again when a stored version runs."""
        if self.market_data.replay_start is None or self.broker in (None, SIMULATED):
            return None
        return (f"a replay-clock strategy (market_data.replay_start) trades on a simulated account of its own; it "
                f"cannot trade at {self.broker} (leave broker empty or set it to simulated)")

    def broker_for(self, default: str) -> str:
        """The broker this strategy trades at: its own choice, else the simulator for a replay-clock strategy
        (a replayed market can be traded nowhere else), else ``default`` (TRADETRAIL_BROKER)."""
        if self.broker:
            return self.broker
        return SIMULATED if self.market_data.replay_start is not None else default

    def to_json(self) -> dict:
        return self.model_dump(mode="json")
