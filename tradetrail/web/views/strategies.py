"""Strategies: the list, the wizard that writes a new one (symbol → timeframes and indicators → analyst and
prompts → schedule → risk → review), and one strategy's page (configuration, versions and their diff,
enable/pause, run now, recent runs, positions, statistics; editing saves a new version).

The wizard is one form in steps; each step's preview is an htmx request that answers a fragment (the symbol
search, the rendered prompt, the next five runs, the sizing example, the validation), so no script of ours
is needed beyond htmx. Every field is parsed by ``web/strategy_form.py`` into the API's schema.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tradetrail.broker.port import BrokerError
from tradetrail.catalogue import symbols
from tradetrail.marketdata.port import MarketDataError
from tradetrail.prompts.templates import PromptTemplateError
from tradetrail.schemas.strategy import NAME_PATTERN
from tradetrail.services.prompts import user_prompts as prompts
from tradetrail.services.strategies import configs as strategies
from tradetrail.services.strategies.configs import InvalidStrategy
from tradetrail.services.strategies.drafts import draft_next_runs, sizing_example
from tradetrail.services.strategies.overview import overview
from tradetrail.services.strategies.versions import diff_versions
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageUser
from tradetrail.web.strategy_form import STEPS, FormErrors, config_from_form, defaults, form_values
from tradetrail.web.templating import render, render_text

router = page_router()
PAGE = 50
StrategyName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
Version = Annotated[int | None, Query(ge=1, le=1_000_000)]
SEARCH = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


def _fragment(template: str, **context) -> HTMLResponse:
    return HTMLResponse(render_text(template, **context), headers={"Cache-Control": "no-store"})


def _prompt_names(app, user_id: int) -> list[str]:
    return [p["name"] for p in prompts.list_prompts(app, user_id)]


def _wizard(request: Request, user, *, form: dict | None = None, errors: dict | None = None,
            status: int = 200) -> Response:
    app = request.app.state.app
    return render(request, "strategy_new.html", status_code=status, steps=STEPS,
                  values=form_values(defaults(), form), name=(form or {}).get("name", ""), errors=errors or {},
                  prompt_names=_prompt_names(app, user.user_id))


@router.get("/strategies")
def strategy_list(request: Request, user: PageUser,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    rows = strategies.list_strategies(request.app.state.app, user.user_id, limit=PAGE + 1, offset=offset)
    return render(request, "strategies.html", rows=rows[:PAGE], more=len(rows) > PAGE, offset=offset, page=PAGE,
                  query={})


@router.get("/strategies/new")
def wizard(request: Request, user: PageUser) -> Response:
    return _wizard(request, user)


@router.get("/strategies/new/symbols")
def wizard_symbols(request: Request, user: PageUser, q: Annotated[str, Query(max_length=64)] = "",
                   source: Annotated[str, Query(alias="market_data.source", max_length=10)] = "") -> Response:
    """The symbol step's search: matches from the symbol cache (or the source, which fills the cache)."""
    text, found, problem = q.strip(), [], None
    if text and SEARCH.fullmatch(text):
        try:
            found = symbols.search_symbols(request.app.state.app, text, source=source or None, limit=10)
        except (MarketDataError, ValueError) as exc:
            problem = str(exc)
    elif text:
        problem = "a search is 1–64 characters without control characters"
    return _fragment("partials/symbol_choices.html", found=found, query=text, problem=problem)


def _draft(form: dict, base: dict | None = None):
    """The draft configuration, or the fragment saying which fields are wrong."""
    try:
        return config_from_form(form, base if base is not None else defaults()), None
    except FormErrors as exc:
        return None, _fragment("partials/form_errors.html", errors=exc.errors)


@router.post("/strategies/new/prompt")
def wizard_prompt(request: Request, user: ChangingUser, form: Form) -> Response:
    """The analyst step's preview: each prompt the draft names, rendered with sample values."""
    app, rendered = request.app.state.app, []
    for role in ("system", "daily", "weekly"):
        name = form.get(f"analyst.prompts.{role}", "")
        try:
            rendered.append({"role": role, "name": name,
                             "text": prompts.render_preview(app, user.user_id, name=name)["rendered"]})
        except (PromptTemplateError, strategies.NotFound) as exc:
            rendered.append({"role": role, "name": name, "error": str(exc)})
    return _fragment("partials/prompt_previews.html", rendered=rendered)


@router.post("/strategies/new/schedule")
def wizard_schedule(request: Request, user: ChangingUser, form: Form) -> Response:
    config, problem = _draft(form)
    if problem:
        return problem
    return _fragment("partials/next_runs.html", runs=draft_next_runs(config, 5))


def _price(form: dict, name: str, default: float) -> float:
    try:
        value = float(form.get(name) or default)
    except ValueError:
        return default
    return value if value == value and abs(value) < 1e12 else default


@router.post("/strategies/new/sizing")
def wizard_sizing(request: Request, user: ChangingUser, form: Form) -> Response:
    config, problem = _draft(form)
    if problem:
        return problem
    try:
        example = sizing_example(request.app.state.app, user.user_id, config, _price(form, "example.entry", 100.0),
                                 _price(form, "example.stop", 96.0), _price(form, "example.target", 108.0))
    except (BrokerError, KeyError) as exc:  # the account's equity comes from the broker
        return _fragment("partials/form_errors.html", errors={"equity": f"the broker could not tell: {exc}"})
    return _fragment("partials/sizing_example.html", example=example)


@router.post("/strategies/new/validate")
def wizard_validate(request: Request, user: ChangingUser, form: Form) -> Response:
    """The review step: every field error, then every reason it could not run (the symbol, the prompts)."""
    config, problem = _draft(form)
    if problem:
        return problem
    problems = strategies.validate_config(request.app.state.app, user.user_id, config)
    if not re.fullmatch(NAME_PATTERN, form.get("name", "")):
        problems = ["name: 1–100 letters, digits, '_', '.' or '-', starting with a letter or digit", *problems]
    return _fragment("partials/validation.html", problems=problems, config=config.to_json())


@router.post("/strategies")
def create(request: Request, user: ChangingUser, form: Form) -> Response:
    """Save the wizard's strategy (enabled) and open its page; a refused one shows the wizard again, with what
    was typed and each problem by its field."""
    name = form.get("name", "").strip()
    errors: dict[str, str] = {}
    if not re.fullmatch(NAME_PATTERN, name) or name == "new":
        errors["name"] = "1–100 letters, digits, '_', '.' or '-', starting with a letter or digit (not “new”)"
    try:
        config = config_from_form(form, defaults())
    except FormErrors as exc:
        errors.update(exc.errors)
    if not errors:
        try:
            strategies.create_strategy(request.app.state.app, user.user_id, name, config)
        except InvalidStrategy as exc:
            errors.update(_problem_fields(exc.problems))
    if errors:
        return _wizard(request, user, form=form, errors=errors, status=422)
    return RedirectResponse(f"/strategies/{name}", status_code=303)


def _problem_fields(problems: list[str]) -> dict[str, str]:
    """``field: reason`` problems by their field (the rest under ``config``)."""
    out: dict[str, str] = {}
    for problem in problems:
        field, sep, reason = problem.partition(": ")
        if sep and re.fullmatch(r"[a-z_.]+", field):
            out[field] = reason
        else:
            out["config"] = f"{out['config']}; {problem}" if "config" in out else problem
    return out


def _page(request: Request, user, name: str, *, old: int | None = None, new: int | None = None,
          form: dict | None = None, errors: dict | None = None, status: int = 200) -> Response:
    app = request.app.state.app
    data = overview(app, user.user_id, name)
    current = data["strategy"]["version"]
    diff = None
    if old is not None or new is not None:
        old, new = old or max(current - 1, 1), new or current
        diff = {"old": old, "new": new, "changes": diff_versions(app, user.user_id, name, old, new)}
    return render(request, "strategy.html", status_code=status, **data, diff=diff, steps=STEPS,
                  values=form_values(data["strategy"]["config"], form), errors=errors or {},
                  prompt_names=_prompt_names(app, user.user_id))


@router.get("/strategies/{name}")
def strategy_page(request: Request, name: StrategyName, user: PageUser, old: Version = None,
                  new: Version = None) -> Response:
    return _page(request, user, name, old=old, new=new)


@router.post("/strategies/{name}/edit")
def edit(request: Request, name: StrategyName, user: ChangingUser, form: Form) -> Response:
    """Save the form as a new version (an unchanged one adds none) and show what changed."""
    app = request.app.state.app
    detail = strategies.strategy_detail(app, user.user_id, name)
    try:
        config = config_from_form(form, detail["config"])
        saved = strategies.update_strategy(app, user.user_id, name, config)
    except FormErrors as exc:
        return _page(request, user, name, form=form, errors=exc.errors, status=422)
    except InvalidStrategy as exc:
        return _page(request, user, name, form=form, errors=_problem_fields(exc.problems), status=422)
    if saved["version"] == detail["version"]:
        return RedirectResponse(f"/strategies/{name}", status_code=303)
    return RedirectResponse(f"/strategies/{name}?old={detail['version']}&new={saved['version']}#diff",
                            status_code=303)


@router.post("/strategies/{name}/enable")
def enable(request: Request, name: StrategyName, user: ChangingUser) -> Response:
    strategies.set_enabled(request.app.state.app, user.user_id, name, True)
    return RedirectResponse(f"/strategies/{name}", status_code=303)


@router.post("/strategies/{name}/pause")
def pause(request: Request, name: StrategyName, user: ChangingUser) -> Response:
    strategies.set_enabled(request.app.state.app, user.user_id, name, False)
    return RedirectResponse(f"/strategies/{name}", status_code=303)
