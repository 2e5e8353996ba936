"""A strategy written as YAML or JSON (what ``tradetrail strategies create/edit/validate`` read): the API's
schema, every problem named by its field's path, and text that is no strategy refused in one line."""

from __future__ import annotations

import json

import pytest

from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.errors import DocumentError, InvalidStrategy
from tradetrail.services.strategies.documents import config_document, parse_document


def test_yaml_and_json_give_the_same_configuration_and_the_document_reads_back():
    yaml_text = "name: swing\nsymbol: spy\nrisk:\n  max_position_pct: 10\nmarket_data:\n  replay_start: 2005-01-03\n"
    doc = parse_document(yaml_text)
    assert doc.name == "swing" and doc.config.symbol == "SPY" and doc.config.risk.max_position_pct == 10
    as_json = json.dumps({"symbol": "SPY", "risk": {"max_position_pct": 10},
                          "market_data": {"replay_start": "2005-01-03"}}, indent="\t")  # tabs: JSON, not YAML
    assert parse_document(as_json).config == doc.config and parse_document(as_json).name is None
    again = parse_document(config_document({"name": "swing", "config": doc.config.to_json()}))
    assert again.name == "swing" and again.config == doc.config


def test_every_problem_names_its_field_by_path():
    with pytest.raises(InvalidStrategy) as caught:
        parse_document("name: 'bad name'\nsymbol: SPY\nrisk: {max_position_pct: 500}\nindicators: "
                       "{sma_periods: [20, x]}\nbogus: 1\n")
    problems = caught.value.problems
    assert problems[0].startswith("name: ")
    assert "risk.max_position_pct: Input should be less than or equal to 100" in problems
    assert "indicators.sma_periods.1: Input should be a valid integer" in problems
    assert "bogus: Extra inputs are not permitted" in problems


@pytest.mark.parametrize("text, message", [
    ("", "the document is empty"),
    ("- symbol: SPY\n", "the document is a list, not a mapping"),
    ("just text\n", "the document is a str"),
    ("risk: [\n", "not valid YAML or JSON at line 2"),
    ("symbol: SPY\nsymbol: QQQ\n", "key 'symbol' is given twice"),
    ("a: &x [1, 2]\nb: *x\n", "aliases (*name) are not allowed"),
    ("description: " + "x" * 70_000, "larger than 64 KiB"),
    ("[" * 400 + "]" * 400, "nested too deep"),
])
def test_text_that_is_no_strategy_is_one_line(text, message):
    with pytest.raises(DocumentError) as caught:
        parse_document(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_schema_is_the_apis():
    assert parse_document("symbol: SPY\n").config == StrategyConfig(symbol="SPY")
