"""Prompt templates with versions, and a render preview with sample variables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from tradetrail.api.deps import AppDep, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.api.prompt_schemas import (
    PromptIn,
    PromptLimitsOut,
    PromptOut,
    PromptUpdateIn,
    PromptVersionOut,
    RenderIn,
    RenderOut,
)
from tradetrail.prompts.templates import ALLOWED_FILTERS, ALLOWED_TESTS, NOT_AVAILABLE, VARIABLES, limits
from tradetrail.services.prompts import user_prompts as svc

router = APIRouter(prefix="/api/prompts", tags=["prompts"], responses=ERROR_RESPONSES)
PromptName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


@router.get("", response_model=list[PromptOut])
def list_prompts(app: AppDep, user: UserDep) -> list[dict]:
    """Your templates and the built-in ones you have not overridden."""
    return svc.list_prompts(app, user.user_id)


@router.get("/variables", response_model=dict[str, str])
def variables(user: UserDep) -> dict:
    """The variables a template may use, with what each holds."""
    return VARIABLES


@router.get("/limits", response_model=PromptLimitsOut)
def template_limits(user: UserDep) -> dict:
    """The limits every template is saved and rendered within (characters, tokens, steps, seconds...), and
    the filters, tests and statements it may use."""
    return {"limits": limits(), "filters": list(ALLOWED_FILTERS), "tests": list(ALLOWED_TESTS),
            "not_available": NOT_AVAILABLE}


@router.post("", response_model=PromptOut, status_code=201)
def create(body: PromptIn, app: AppDep, user: UserDep) -> dict:
    return svc.create_user_prompt(app, user.user_id, body.name, body.body, body.description)


@router.post("/render", response_model=RenderOut)
def render(body: RenderIn, app: AppDep, user: UserDep) -> dict:
    """Render a template body (or a saved template by name) with sample values, overridden by ``variables``."""
    return svc.render_preview(app, user.user_id, body=body.body, name=body.name, variables=body.variables)


@router.get("/{name}", response_model=PromptOut)
def detail(name: PromptName, app: AppDep, user: UserDep) -> dict:
    return svc.prompt_detail(app, user.user_id, name)


@router.put("/{name}", response_model=PromptOut)
def update(name: PromptName, body: PromptUpdateIn, app: AppDep, user: UserDep) -> dict:
    """A new version (of your own template; for a built-in name, your override of it). Create with POST."""
    svc.prompt_detail(app, user.user_id, name)  # NotFound unless it is yours or built-in
    return svc.save_user_prompt(app, user.user_id, name, body.body, body.description)


@router.delete("/{name}", status_code=204)
def delete(name: PromptName, app: AppDep, user: UserDep) -> Response:
    svc.delete_user_prompt(app, user.user_id, name)
    return Response(status_code=204)


@router.get("/{name}/versions/{version}", response_model=PromptVersionOut)
def version(name: PromptName, version: Annotated[int, Path(ge=1, le=1_000_000)], app: AppDep,
            user: UserDep) -> dict:
    return svc.prompt_version(app, user.user_id, name, version)
