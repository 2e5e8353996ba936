"""Request and response bodies of the prompt-template routes (kept apart from ``schemas.py``: the bounds on
template bodies and previews live with the template engine's limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradetrail.api.schemas import TEXT_PATTERN, _In
from tradetrail.prompts.templates import MAX_BODY_CHARS, MAX_VARIABLES_CHARS, MAX_VARIABLES_NESTING, check_variables
from tradetrail.schemas.prompt_input import PROMPT_NAME_PATTERN, RESERVED_NAMES, PromptIn, PromptUpdateIn  # noqa: F401
from tradetrail.schemas.strategy import NAME_PATTERN


# `/api/prompts/variables` and `/api/prompts/limits` are routes: a template of either name could never be read.
class PromptVersionRef(BaseModel):
    version: int
    sha256: str
    created_at: str


class PromptOut(BaseModel):
    id: int
    name: str
    description: str
    builtin: bool
    latest_version: int
    body: str
    sha256: str | None
    created_at: str
    versions: list[PromptVersionRef] | None = None


class PromptVersionOut(BaseModel):
    name: str
    version: int
    body: str
    sha256: str
    created_at: str
    builtin: bool


class RenderIn(_In):
    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"anyOf": [{"required": ["body"]}, {"required": ["name"]}]})

    body: str | None = Field(default=None, min_length=1, max_length=MAX_BODY_CHARS, pattern=TEXT_PATTERN)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    variables: dict[str, Any] | None = Field(default=None, description=(
        f"values that replace the sample ones: at most {MAX_VARIABLES_CHARS:,} characters of text, nested at "
        f"most {MAX_VARIABLES_NESTING} deep"))

    @model_validator(mode="after")
    def _body_or_name(self) -> RenderIn:
        if self.body is None and self.name is None:
            raise ValueError("give a template body or a template name")
        return self

    @field_validator("variables")
    @classmethod
    def _bounded(cls, value: dict | None) -> dict | None:
        if value is not None:
            check_variables(value)  # a PromptTemplateError is a ValueError: 422 naming the field
        return value


class RenderOut(BaseModel):
    rendered: str
    sha256: str
    variables_used: list[str]
    sample_variables: dict[str, Any]


class PromptLimitsOut(BaseModel):
    """What a template may be and do; a save or render that passes a limit is answered 422 naming it."""

    limits: dict[str, float]
    filters: list[str]
    tests: list[str]
    not_available: list[str]
