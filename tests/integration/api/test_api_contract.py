"""Contract fuzzing of the whole OpenAPI document with schemathesis, authenticated: no 5xx, and every
answer matches its documented status codes, content types and schemas.

The number of examples per operation is bounded (``TRADETRAIL_TEST_FUZZ_EXAMPLES``, default 15) so it runs
in ``make test``; raise it for a deeper run. (Schemathesis' pytest fixture integration does not work with
pytest 9, so the operations are walked here with Hypothesis directly.)

The ``slow`` variant runs schemathesis' own engine as ``st run --checks all`` does — every phase (examples,
coverage with undeclared methods and boundary values, fuzzing with valid and invalid data), every check — with
``TRADETRAIL_TEST_FUZZ_DEEP_EXAMPLES`` (default 100) examples per operation and a fixed seed
(``TRADETRAIL_TEST_FUZZ_SEED``).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.api_client import api_user
from tests.support.helpers import demo, wait_for
from tradetrail.server.app import create_app

pytestmark = pytest.mark.once  # the API against its OpenAPI document: the same on either backend

EXAMPLES = int(os.environ.get("TRADETRAIL_TEST_FUZZ_EXAMPLES", "15"))
# "schema-valid data must be accepted" cannot hold here: a schema-valid strategy may name a symbol the
# market data does not have, a prompt that does not exist or a cron that never fires in a session — checks
# that need the database, answered 422 with the reason. Every other default check runs.
EXCLUDED = [positive_data_acceptance]


def test_api_contract(app):
    demo(app)
    token = api_user(app, "demo").token
    api_user(app, "decoy")  # tokens 2+ exist, so a fuzzed DELETE of a low token id hits someone else's (404)
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app, background=False))
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            if case.method == "DELETE" and case.path == "/api/auth/tokens/{token_id}":
                case.path_parameters["token_id"] = max(int(case.path_parameters["token_id"]), 3)  # not our own
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    _runs_finished(app)
    assert operations >= 40
    assert not failures, "\n\n".join(failures)


def _runs_finished(app) -> None:
    """A fuzzed POST .../run starts a real run in the background; it ends before the test (and its database)."""
    from sqlalchemy import func, select

    from tradetrail.db.models import Execution

    def idle():
        with app.Session() as s:
            return s.scalar(select(func.count()).where(Execution.status == "running")) == 0

    wait_for(idle, 120, "the runs the fuzzer started to finish")


DEEP_EXAMPLES = int(os.environ.get("TRADETRAIL_TEST_FUZZ_DEEP_EXAMPLES", "100"))
DEEP_SEED = int(os.environ.get("TRADETRAIL_TEST_FUZZ_SEED", "11"))  # fixed: a failure reproduces; vary it to explore
# "Schema-valid data is accepted" cannot be said in a schema for these: whether the symbol exists in the market
# data, the named prompt templates exist, the cron fires in a session, a template only uses known variables and
# parses — the route answers 422 with the reason. Every other operation is held to it.
NOT_EXPRESSIBLE = {
    ("POST", "/api/strategies"): "the symbol, the prompts and the schedule are checked against the database",
    ("PUT", "/api/strategies/{name}"): "the same checks as creating one",
    ("POST", "/api/prompts"): "a template must parse and use only known variables",
    ("PUT", "/api/prompts/{name}"): "a template must parse and use only known variables",
    ("POST", "/api/prompts/render"): "a template must parse and use only known variables",
}
# Findings in code other engineers own (issue #11), left out until their fix lands: (operation, check) -> text
# the failure's message or answer must contain to be left out, and why. Anything else still fails.
OPEN_ELSEWHERE: dict[tuple[str, str], tuple[str, str]] = {}


def _deep_config(token: str) -> SchemathesisConfig:
    operations = [{"include-method": method, "include-path": path,
                   "checks": {"positive_data_acceptance": {"enabled": False}}}
                  for method, path in NOT_EXPRESSIBLE]
    return SchemathesisConfig.from_dict({
        "headers": {"Authorization": f"Bearer {token}"}, "workers": 1, "seed": DEEP_SEED,
        "generation": {"max-examples": DEEP_EXAMPLES, "mode": "all"}, "operations": operations})


@pytest.mark.slow
@pytest.mark.once
def test_api_contract_every_phase_and_check(app):
    demo(app)
    api_user(app, "decoy")
    own = api_user(app, "demo")
    own_id = next(t["id"] for t in own.get("/api/auth/tokens").json() if t["prefix"] == own.token[:10])
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app, background=False),
                                            config=_deep_config(own.token))

    @schema.hook("map_case")
    def keep_our_token(ctx, case):  # a fuzzed DELETE of our own token would turn the rest of the run into 401s
        if case.path == "/api/auth/tokens/{token_id}" and str((case.path_parameters or {}).get("token_id")) == \
                str(own_id):
            case.path_parameters["token_id"] = own_id + 1000
        return case

    failures, scenarios = {}, 0
    for event in from_schema(schema).execute():
        if isinstance(event, (events.FatalError, events.NonFatalError)):
            failures.setdefault(("engine", type(event).__name__), str(getattr(event, "value", event))[:1500])
        if not isinstance(event, events.ScenarioFinished):
            continue
        scenarios += 1
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                if check.status != Status.FAILURE:
                    continue
                interaction = event.recorder.interactions.get(case_id)
                answer = interaction.response if interaction else None
                text = "\n".join([f"[{event.phase.value}] {check.failure_info.failure.title}",
                                  str(check.failure_info.failure.message)[:800], check.failure_info.code_sample[:800],
                                  f"-> {answer.status_code} {answer.content[:300]!r}" if answer is not None else ""])
                known = OPEN_ELSEWHERE.get((event.label, check.name))
                if known is None or known[0] not in text:
                    failures.setdefault((event.label, check.name), text)
    _runs_finished(app)
    assert scenarios >= 100  # every operation in several phases
    assert own.get("/api/auth/me").status_code == 200  # the run was authenticated to its end
    assert not failures, "\n\n".join(f"{label} {check}:\n{text}" for (label, check), text in failures.items())
