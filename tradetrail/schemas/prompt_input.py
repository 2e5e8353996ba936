"""A prompt template as a user submits it (API body or web form): the name rules and the size limits."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from tradetrail.prompts.templates import MAX_BODY_CHARS
from tradetrail.schemas.inputs import TEXT_PATTERN, _In
from tradetrail.schemas.strategy import NAME_PATTERN

RESERVED_NAMES = ("variables", "limits")
PROMPT_NAME_PATTERN = rf"^(?!(?:{'|'.join(RESERVED_NAMES)})$){NAME_PATTERN[1:]}"


class PromptIn(_In):
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")  # the name's look-ahead

    name: str = Field(pattern=PROMPT_NAME_PATTERN, description=f"not {' or '.join(RESERVED_NAMES)} (routes)")
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS, pattern=TEXT_PATTERN)
    description: str = Field(default="", max_length=2000, pattern=TEXT_PATTERN)


class PromptUpdateIn(_In):
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS, pattern=TEXT_PATTERN)
    description: str | None = Field(default=None, max_length=2000, pattern=TEXT_PATTERN)
