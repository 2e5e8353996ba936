"""Request and response bodies of the prompt-template routes (kept apart from ``schemas.py``: the bounds on
template bodies and previews live with the template engine's limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tradetrail.api.schemas import _In
from tradetrail.schemas.strategy import NAME_PATTERN


class PromptIn(_In):
    name: str = Field(pattern=NAME_PATTERN)
    body: str = Field(min_length=1, max_length=50_000)
    description: str = Field(default="", max_length=2000)


class PromptUpdateIn(_In):
    body: str = Field(min_length=1, max_length=50_000)
    description: str | None = Field(default=None, max_length=2000)


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
    body: str | None = Field(default=None, min_length=1, max_length=50_000)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    variables: dict[str, Any] | None = None


class RenderOut(BaseModel):
    rendered: str
    sha256: str
    variables_used: list[str]
    sample_variables: dict[str, Any]
