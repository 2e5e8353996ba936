"""The strategy form of the wizard and of the edit form: which fields it has, in which step, and how the
posted text becomes the API's configuration (``StrategyConfig``: the same schema, the same errors, each
naming its field by its dotted path).

Fields a form does not show keep the value they had (the edit form starts from the current version)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from tradetrail.domain.indicators import REQUIRED_SMA
from tradetrail.schemas.strategy import AnalystConfig, MarketDataConfig, StrategyConfig


@dataclass(frozen=True)
class Field:
    name: str  # the dotted path in the configuration
    label: str
    kind: str  # text | int | float | ints | bool | choice | date | textarea | optional | json
    choices: tuple[str, ...] = ()
    hint: str = ""


def schema_choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The values a ``Literal[...]`` or ``Literal[...] | None`` field of the schema allows: the form offers what
    the API accepts and names no adapter of its own."""
    annotation = model.model_fields[name].annotation
    return tuple(value for arg in (annotation, *get_args(annotation)) for value in get_args(arg)
                 if isinstance(value, str))


STEPS: list[tuple[str, str, list[Field]]] = [
    ("symbol", "Symbol", [
        Field("symbol", "Symbol", "text", hint="search the symbol cache above, or type a ticker"),
        Field("description", "Description", "textarea"),
        Field("market_data.source", "Market data", "choice", ("", *schema_choices(MarketDataConfig, "source")),
              "empty: the server's default source"),
        Field("market_data.replay_start", "Replay clock starts", "date",
              hint="a date replays the market one session per run on a simulated account of its own; empty: "
                   "real time"),
    ]),
    ("timeframes", "Timeframes and indicators", [
        Field("market_data.confirmation_timeframe", "Confirmation timeframe", "choice", ("weekly", ""),
              "daily bars always; empty: no weekly confirmation"),
        Field("market_data.lookback_days", "Daily bars fetched", "int"),
        Field("indicators.sma_periods", "SMA periods", "ints", hint=f"comma-separated; must include {REQUIRED_SMA}"),
        Field("indicators.ema_periods", "EMA periods", "ints", hint="comma-separated"),
        Field("indicators.rsi_period", "RSI period", "int"),
        Field("indicators.atr_period", "ATR period", "int"),
        Field("indicators.macd_fast", "MACD fast", "int"),
        Field("indicators.macd_slow", "MACD slow", "int"),
        Field("indicators.macd_signal", "MACD signal", "int"),
        Field("charts.enabled", "Render charts for the analyst", "bool"),
    ]),
    ("analyst", "Analyst and prompts", [
        Field("analyst.kind", "Analyst", "choice", schema_choices(AnalystConfig, "kind"),
              "auto: the model when one is configured, else the rules; plugin: the class named below"),
        Field("analyst.plugin", "Plug-in", "optional",
              hint="with kind plugin: package.module:ClassName, in a module the server allows"),
        Field("analyst.params", "Plug-in parameters", "json", hint='with kind plugin: a JSON object, e.g. '
                                                                   '{"fast": 20, "slow": 50}'),
        Field("analyst.model", "Model", "optional", hint="empty: the server's TRADETRAIL_LLM_MODEL"),
        Field("analyst.prompts.system", "System prompt", "prompt"),
        Field("analyst.prompts.daily", "Daily prompt", "prompt"),
        Field("analyst.prompts.weekly", "Weekly prompt", "prompt"),
    ]),
    ("schedule", "Schedule", [
        Field("schedule.cron", "Cron (five fields)", "optional", hint="e.g. 35 9 * * mon-fri; empty: run by hand"),
        Field("schedule.timezone", "Time zone", "text", hint="the exchange's, e.g. America/New_York"),
        Field("schedule.market_sessions_only", "Only while the exchange is open", "bool"),
    ]),
    ("risk", "Risk", [
        Field("mode", "Mode", "choice", ("paper", "live")),
        Field("risk.risk_per_trade_pct", "Risk per trade (% of equity)", "float"),
        Field("risk.max_position_pct", "Largest position (% of equity)", "float"),
        Field("risk.max_exposure_pct", "Largest exposure (% of equity)", "float"),
        Field("risk.max_open_positions", "Open positions at most", "int"),
        Field("risk.min_reward_risk", "Reward/risk at least", "float"),
        Field("risk.daily_loss_limit_pct", "Daily loss limit (%)", "float"),
        Field("risk.max_consecutive_losses", "Pause after losing trades in a row", "int"),
        Field("orders.entry_type", "Entry order", "choice", ("MKT", "LMT")),
    ]),
]
FIELDS = [f for _, _, fields in STEPS for f in fields]


class FormErrors(ValueError):
    """What is wrong with the posted form: the dotted field name → why (``config`` for the whole)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _get(config: dict, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(config, dict):
            return None
        config = config.get(part)
    return config


def _put(config: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[last] = value


def _parse(field: Field, raw: str | None) -> Any:
    text = (raw or "").strip()
    if field.kind == "bool":
        return raw is not None and raw != ""
    if field.kind in ("int", "float"):
        try:
            return int(text) if field.kind == "int" else float(text)
        except ValueError:
            raise ValueError(f"must be {'a whole number' if field.kind == 'int' else 'a number'}") from None
    if field.kind == "ints":
        try:
            return [int(p) for p in text.replace(" ", ",").split(",") if p]
        except ValueError:
            raise ValueError("must be whole numbers separated by commas") from None
    if field.kind == "date":
        if not text:
            return None
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if field.kind in ("optional", "choice") and not text:
        return None
    if field.kind == "json":
        try:
            value = json.loads(text) if text else {}
        except ValueError:
            raise ValueError("must be a JSON object, e.g. {\"fast\": 20}") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object, e.g. {\"fast\": 20}")
        return value
    return raw if field.kind == "textarea" else text


def config_from_form(form: dict[str, str], base: dict | None = None) -> StrategyConfig:
    """The configuration the form describes, over ``base`` (the current version's, or the defaults);
    ``FormErrors`` naming each field that is wrong."""
    config = json.loads(json.dumps(base or {}))
    errors: dict[str, str] = {}
    for field in FIELDS:
        if field.kind != "bool" and field.name not in form:
            continue
        try:
            _put(config, field.name, _parse(field, form.get(field.name)))
        except ValueError as exc:
            errors[field.name] = str(exc)
    if errors:
        raise FormErrors(errors)
    try:
        return StrategyConfig.model_validate(config)
    except ValidationError as exc:
        raise FormErrors({".".join(str(p) for p in e["loc"]) or "config": e["msg"] for e in exc.errors()}) from None


def form_values(config: dict, form: dict[str, str] | None = None) -> dict[str, str]:
    """What each field shows: the posted text when there is one (a refused form keeps what was typed), else
    the configuration's value."""
    values: dict[str, str] = {}
    for field in FIELDS:
        if form is not None and (field.name in form or field.kind == "bool"):
            values[field.name] = form.get(field.name, "")
            continue
        value = _get(config, field.name)
        if field.kind == "bool":
            values[field.name] = "on" if value else ""
        elif field.kind == "ints":
            values[field.name] = ", ".join(str(v) for v in value or ())
        elif field.kind == "json":
            values[field.name] = json.dumps(value) if value else ""
        else:
            values[field.name] = "" if value is None else str(value)
    return values


def defaults() -> dict:
    """A new strategy's starting values (the schema's defaults, on a weekday schedule in New York)."""
    data = StrategyConfig(symbol="SPX").to_json()
    data["symbol"] = ""
    data["schedule"].update(cron="35 9 * * mon-fri", market_sessions_only=True)
    return data
