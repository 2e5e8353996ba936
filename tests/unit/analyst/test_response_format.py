"""The pieces of the response_format fallback that need no server: the strict schema we now build ourselves,
what counts as a refusal, how a prompt-mode reply is read, and the setting that forces a mode."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field, ValidationError

from tradetrail.analyst import response_format as rf
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.settings import LLM_RESPONSE_FORMATS, Settings


def _levels(description: str) -> dict:
    return {"anyOf": [{"exclusiveMinimum": 0, "type": "number"}, {"type": "null"}], "description": description}


# What ``openai.lib._pydantic.to_strict_json_schema(AnalystAnswer)`` returned (openai 3.57.0, pydantic 2.14.4)
# before we stopped importing the SDK's private module.
SDK_SCHEMA = {
    "additionalProperties": False,
    "description": "Strict JSON answer: action, confidence, trend, levels, key factors and reasoning.",
    "properties": {
        "action": {"enum": ["BUY", "SELL", "HOLD"], "title": "Action", "type": "string"},
        "confidence": {"description": "0-100, how sure the analyst is of the action", "maximum": 100,
                       "minimum": 0, "title": "Confidence", "type": "integer"},
        "trend": {"enum": ["bullish", "bearish", "neutral"], "title": "Trend", "type": "string"},
        "entry": {**_levels("entry price; required for BUY/SELL"), "title": "Entry"},
        "stop_loss": {**_levels("protective stop; needed for BUY/SELL when the strategy places protective orders "
                                "(the default)"), "title": "Stop Loss"},
        "take_profit": {**_levels("profit target; needed for BUY/SELL when the strategy places protective orders "
                                  "(the default)"), "title": "Take Profit"},
        "key_factors": {"items": {"type": "string"}, "maxItems": 10, "minItems": 1, "title": "Key Factors",
                        "type": "array"},
        "reasoning": {"maxLength": 4000, "minLength": 1, "title": "Reasoning", "type": "string"},
    },
    "required": ["action", "confidence", "trend", "entry", "stop_loss", "take_profit", "key_factors", "reasoning"],
    "title": "AnalystAnswer",
    "type": "object",
}


def test_our_strict_schema_equals_what_the_sdk_built():
    assert rf.strict_json_schema(AnalystAnswer) == SDK_SCHEMA
    assert list(rf.strict_json_schema(AnalystAnswer)["required"]) == SDK_SCHEMA["required"]  # order kept


class _Level(BaseModel):
    price: float
    note: str | None = None  # optional: required in strict mode, still nullable


class _Nested(BaseModel):
    size: int = 3
    level: _Level
    levels: list[_Level] = Field(min_length=1)
    maybe: _Level | None = None
    pair: tuple[int, str]


def test_strict_rules_reach_nested_models_lists_and_optionals():
    schema = rf.strict_json_schema(_Nested)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["size", "level", "levels", "maybe", "pair"]
    level = schema["$defs"]["_Level"]
    assert level["additionalProperties"] is False and level["required"] == ["price", "note"]
    assert level["properties"]["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note"}
    assert "default" not in json.dumps(level)  # default null dropped; size keeps its default 3
    assert schema["properties"]["size"]["default"] == 3


class _Loose(BaseModel):
    tags: dict[str, int]


def test_a_free_mapping_cannot_be_made_strict():
    with pytest.raises(rf.NotStrictable, match="tags"):
        rf.strict_json_schema(_Loose)


def test_strict_schema_is_a_fresh_copy_each_time():
    first = rf.strict_json_schema(AnalystAnswer)
    first["properties"].clear()
    assert rf.strict_json_schema(AnalystAnswer) == SDK_SCHEMA


@pytest.mark.parametrize(("mode", "status", "text", "refused"), [
    ("json_schema", 400, "response_format of type 'json_schema' is not supported by this model", True),
    ("json_schema", 400, "Unknown parameter response_format", True),
    ("json_schema", 400, "invalid value  response_format", True),
    ("json_schema", 422, "json_schema is not supported", True),
    ("json_schema", 400, "JSON schema mode is unavailable", True),
    ("json_schema", 400, "This model's maximum context length is 8192 tokens", False),
    ("json_object", 400, "'json object' is not a valid format", True),
    ("json_object", 400, "messages must contain the word json  messages", False),
    ("json_schema", 400, "messages[1].content[1]: image data is not a PNG messages", False),
    ("json_schema", 401, "response_format", False),  # not a 400/422
    ("json_schema", 500, "response_format", False),
    # in prompt mode nothing was asked: only a server wanting a response_format refuses it (another server now
    # answers where prompt mode was remembered)
    ("prompt", 400, "response_format is required", True),
    ("prompt", 400, "prompt is too long for this model", False),
    ("prompt", 400, "json_schema of messages[0] is invalid", False),
])
def test_what_counts_as_a_refusal(mode, status, text, refused):
    assert rf.is_refusal(mode, status, text) is refused


@pytest.mark.parametrize(("content", "expected"), [
    ('{"a": 1}', '{"a": 1}'),
    ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ('  ```\n{"a": 1}\n```\n', '{"a": 1}'),
    ('```JSON\n{"a": 1}```', '{"a": 1}'),
])
def test_prompt_mode_reads_a_bare_or_fenced_object(content, expected):
    assert json.loads(rf.reply_json("prompt", content)) == json.loads(expected)


@pytest.mark.parametrize("content", [
    'Here you go:\n```json\n{"a": 1}\n```',
    '```json\n{"a": 1}\n```\nHope this helps.',
    '```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```',
    '{"a": 1}\n{"a": 2}',
    'The answer is {"a": 1}',
])
def test_prompt_mode_guesses_nothing(content):
    with pytest.raises(json.JSONDecodeError):
        json.loads(rf.reply_json("prompt", content))


def test_json_modes_never_unwrap_fences():
    fenced = '```json\n{"a": 1}\n```'
    assert rf.reply_json("json_object", fenced) == fenced == rf.reply_json("json_schema", fenced)


def test_fallback_order_and_request_bodies():
    assert [rf.next_untried(list(rf.MODES[:i + 1])) for i in range(3)] == ["json_object", "prompt", None]
    # started from a remembered mode: the refused ones are skipped, the ones above it asked again
    assert rf.next_untried(["json_object"]) == "json_schema"
    assert rf.next_untried(["prompt"]) == "json_schema"
    assert rf.next_untried(["json_object", "json_schema"]) == "prompt"
    schema = rf.strict_json_schema(AnalystAnswer)
    assert rf.response_format_body("json_schema", schema, "n") == {
        "type": "json_schema", "json_schema": {"name": "n", "strict": True, "schema": schema}}
    assert rf.response_format_body("json_object", schema, "n") == {"type": "json_object"}
    assert rf.response_format_body("prompt", schema, "n") is None
    text = rf.schema_instruction(schema)
    assert json.loads(text.split("\n", 1)[1]) == schema and "JSON" in text
    assert text == rf.schema_instruction(rf.strict_json_schema(AnalystAnswer))  # stable: a stable prompt


def test_the_setting_names_exactly_auto_and_the_modes():
    assert set(LLM_RESPONSE_FORMATS) == {"auto", *rf.MODES}


def test_setting_one_mode_for_all_or_per_model():
    assert Settings().llm_response_format_for("any") == "auto"
    assert Settings(llm_response_format="json_object").llm_response_format_for("any") == "json_object"
    per_model = Settings(llm_response_format="llava:13b=json_object, qwen/qwen2-vl=prompt,*=json_schema")
    assert per_model.llm_response_format_for("llava:13b") == "json_object"
    assert per_model.llm_response_format_for("qwen/qwen2-vl") == "prompt"
    assert per_model.llm_response_format_for("gpt-4o") == "json_schema"
    assert Settings(llm_response_format="llava=prompt").llm_response_format_for("gpt-4o") == "auto"


@pytest.mark.parametrize("value", ["json", "llava=jsonobject", "auto,prompt", "a=prompt,a=auto"])
def test_a_bad_setting_is_a_clear_error(value):
    with pytest.raises(ValidationError, match="response_format"):
        Settings(llm_response_format=value)


def test_the_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRADETRAIL_LLM_RESPONSE_FORMAT", "m=json_object")
    assert Settings().llm_response_format_for("m") == "json_object"
