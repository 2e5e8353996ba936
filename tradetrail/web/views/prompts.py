"""``/prompts``: the user's prompt templates and the built-in ones, each with its versions, the diff between
two, an edit form (saving adds a version; saving a built-in's name makes the user's own), and a preview
rendered with sample values before saving."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from tradetrail.prompts.templates import PromptTemplateError
from tradetrail.schemas.prompt_input import PromptIn
from tradetrail.schemas.strategy import NAME_PATTERN
from tradetrail.services.prompts import user_prompts as prompts
from tradetrail.services.prompts.diffs import diff_prompt_versions
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageUser
from tradetrail.web.templating import render, render_text

router = page_router()
PromptName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
Version = Annotated[int | None, Query(ge=1, le=1_000_000)]


def _text(form: dict, name: str) -> str:
    return form.get(name, "").replace("\r\n", "\n")  # a browser's textarea sends CRLF line ends


def _checked(name: str, form: dict) -> tuple[PromptIn | None, dict[str, str]]:
    """The API's own schema for a template (name, body, description): each error by its field."""
    try:
        return PromptIn.model_validate({"name": name, "body": _text(form, "body"),
                                        "description": _text(form, "description")}), {}
    except ValidationError as exc:
        return None, {".".join(map(str, e["loc"])) or "body": e["msg"] for e in exc.errors()}


@router.get("/prompts")
def prompt_list(request: Request, user: PageUser) -> Response:
    return render(request, "prompts.html", rows=prompts.list_prompts(request.app.state.app, user.user_id),
                  errors={}, form={})


@router.post("/prompts")
def create(request: Request, user: ChangingUser, form: Form) -> Response:
    """A new template of the user's own; a name they already use is refused (edit it instead)."""
    app = request.app.state.app
    name = form.get("name", "").strip()
    checked, errors = _checked(name, form)
    if checked and any(p["name"] == name and not p["builtin"] for p in prompts.list_prompts(app, user.user_id)):
        errors["name"] = f"you have a template named {name!r}: edit it on its page"
    if checked and not errors:
        try:
            prompts.save_user_prompt(app, user.user_id, name, checked.body, checked.description)
        except PromptTemplateError as exc:
            errors["body"] = str(exc)
    if errors:
        return render(request, "prompts.html", status_code=422, rows=prompts.list_prompts(app, user.user_id),
                      errors=errors, form=form)
    return RedirectResponse(f"/prompts/{name}", status_code=303)


def _page(request: Request, user, name: str, *, old: int | None = None, new: int | None = None,
          form: dict | None = None, errors: dict | None = None, status: int = 200) -> Response:
    app = request.app.state.app
    detail = prompts.prompt_detail(app, user.user_id, name)
    diff = None
    if old is not None or new is not None:
        latest = detail["latest_version"]
        old, new = old or max(latest - 1, 1), new or latest
        diff = {"old": old, "new": new, "lines": diff_prompt_versions(app, user.user_id, name, old, new)}
    return render(request, "prompt.html", status_code=status, prompt=detail, diff=diff, errors=errors or {},
                  body=_text(form, "body") if form else detail["body"],
                  description=_text(form, "description") if form else detail["description"])


@router.get("/prompts/{name}")
def prompt_page(request: Request, name: PromptName, user: PageUser, old: Version = None,
                new: Version = None) -> Response:
    return _page(request, user, name, old=old, new=new)


@router.post("/prompts/{name}")
def save(request: Request, name: PromptName, user: ChangingUser, form: Form) -> Response:
    """Save the text as a new version (unchanged text adds none) and show what changed."""
    app = request.app.state.app
    before = prompts.prompt_detail(app, user.user_id, name)  # NotFound for a name the user cannot see
    checked, errors = _checked(name, form)
    if checked and not errors:
        try:
            saved = prompts.save_user_prompt(app, user.user_id, name, checked.body, checked.description)
        except PromptTemplateError as exc:
            errors["body"] = str(exc)
    if errors:
        return _page(request, user, name, form=form, errors=errors, status=422)
    if before["builtin"] or saved["latest_version"] == 1:  # the user's own copy starts at version 1
        return RedirectResponse(f"/prompts/{name}", status_code=303)
    if saved["latest_version"] == before["latest_version"]:
        return RedirectResponse(f"/prompts/{name}", status_code=303)
    return RedirectResponse(f"/prompts/{name}?old={before['latest_version']}&new={saved['latest_version']}#diff",
                            status_code=303)


@router.post("/prompts/{name}/preview")
def preview(request: Request, name: PromptName, user: ChangingUser, form: Form) -> Response:
    """The text in the form, rendered with sample values (nothing saved)."""
    body = _text(form, "body")
    try:
        result, error = prompts.render_preview(request.app.state.app, user.user_id, body=body), None
    except PromptTemplateError as exc:
        result, error = None, str(exc)
    return HTMLResponse(render_text("partials/prompt_preview.html", result=result, error=error),
                        headers={"Cache-Control": "no-store"})
