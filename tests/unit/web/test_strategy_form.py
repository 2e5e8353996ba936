"""The wizard's form offers what the API's schema accepts and says what it requires (its SMA hint said 200 while
the schema requires 20; its market-data choices were names of its own)."""

from __future__ import annotations

import re
from typing import get_args

from pydantic import BaseModel, ValidationError

from tradetrail.domain.indicators import REQUIRED_SMA
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.web.strategy_form import STEPS, FormErrors, config_from_form, defaults, form_values


def _field(path: str):
    model: type[BaseModel] = StrategyConfig
    *parents, last = path.split(".")
    for part in parents:
        model = next(a for a in (model.model_fields[part].annotation, *get_args(model.model_fields[part].annotation))
                     if isinstance(a, type) and issubclass(a, BaseModel))
    return model.model_fields[last]


def _literal_values(annotation) -> set[str]:
    return {v for arg in (annotation, *get_args(annotation)) for v in get_args(arg) if isinstance(v, str)}


def test_every_choice_is_one_the_schema_accepts_and_every_value_it_accepts_is_offered():
    choices = [f for _, _, fields in STEPS for f in fields if f.kind == "choice"]
    assert choices
    for f in choices:
        allowed = _literal_values(_field(f.name).annotation)
        assert set(f.choices) - {""} == allowed, (f.name, f.choices, allowed)


def test_the_sma_hint_names_the_period_the_schema_requires():
    (sma,) = [f for _, _, fields in STEPS for f in fields if f.name == "indicators.sma_periods"]
    assert re.search(r"must include (\d+)", sma.hint).group(1) == str(REQUIRED_SMA), sma.hint
    StrategyConfig.model_validate({"symbol": "SPX", "indicators": {"sma_periods": [REQUIRED_SMA, 50]}})
    try:
        StrategyConfig.model_validate({"symbol": "SPX", "indicators": {"sma_periods": [50, 200]}})
    except ValidationError as exc:
        assert f"including {REQUIRED_SMA}" in str(exc)
    else:
        raise AssertionError("a list without the required period was accepted")


def test_a_plugin_strategy_can_be_described_by_the_form_and_bad_parameters_are_named():
    form = {**form_values(defaults()), "symbol": "SPX", "analyst.kind": "plugin",
            "analyst.plugin": "tradetrail.analyst.examples.sma_cross:SmaCross", "analyst.params": '{"fast": 10}'}
    config = config_from_form(form, defaults())
    assert config.analyst.kind == "plugin" and config.analyst.params == {"fast": 10}
    assert form_values(config.to_json())["analyst.params"] == '{"fast": 10}'
    for bad in ("[1, 2]", "{fast: 10}"):
        try:
            config_from_form({**form, "analyst.params": bad}, defaults())
        except FormErrors as exc:
            assert "JSON object" in exc.errors["analyst.params"]
        else:
            raise AssertionError(f"{bad!r} was accepted")
