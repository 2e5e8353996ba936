"""The limits of prompt templates, one by one (issue #11 items 3 and 4): saving evaluates nothing, and a
render stops at its step, time, size, memory and depth bounds with an error that names the bound.

In-process and without a database; the issue's own five templates against a real server and in a run are in
``test_template_bounds_e2e.py``.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tradetrail.prompts.templates import (
    MAX_BODY_CHARS,
    MAX_CALL_DEPTH,
    MAX_NESTING,
    MAX_OUTPUT_CHARS,
    MAX_STEPS,
    MAX_TOKENS,
    MAX_VALUE_CHARS,
    MAX_VARIABLES_CHARS,
    MAX_WORK_CHARS,
    PromptTemplateError,
    check_variables,
    render,
    validate_template,
)
from tradetrail.services.prompts.user_prompts import SAMPLE_VARIABLES


def refused(body: str, match: str, variables: dict | None = None) -> float:
    """Render ``body``; it must fail with a PromptTemplateError matching ``match``. Returns the seconds it took."""
    started = time.monotonic()
    with pytest.raises(PromptTemplateError, match=match):
        render(body, SAMPLE_VARIABLES if variables is None else variables)
    return time.monotonic() - started


# ----------------------------------------------------------------------------------------- saving evaluates nothing


@pytest.mark.parametrize("body", [
    "{{ 'a' * 300000000 }}",  # jinja's compiler folded this constant: 300 MB at save before the fix
    "{{ '%0300000000d'|format(1) }}",  # filters were folded too
    "{{ ('a' ~ 'b') * 150000000 }}",
    "{{ 'a' * 10000000000 }}",  # the issue's: 10 GB, the kernel killed the server
    "{{ '%01000000000d'|format(1) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ (bars.daily|string) * 100000000 }}",
    "{% macro r(n) %}{{ r(n+1) }}{% endmacro %}{{ r(0) }}",
])
def test_saving_a_template_computes_none_of_its_output(body: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert validate_template(body) <= {"bars"}  # it is valid: only a render can tell it goes too far
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.monotonic() - started < 1
    assert peak < 20_000_000, f"saving allocated {peak:,} bytes"


# ----------------------------------------------------------------------------------------------- the render limits


def test_loop_iterations_are_budgeted_across_the_whole_render() -> None:
    nested = "{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}done"
    assert render(nested.replace("N", "90"), {}) == "done\n"  # 8,100 + 90 iterations
    spent = refused(nested.replace("N", "110"), f"more than {MAX_STEPS:,} steps")  # 12,100 + 110
    assert spent < 1
    refused("{% for i in range(10001) %}{% endfor %}", f"range\\(\\) of more than {MAX_STEPS:,} numbers")
    # a recursive loop iterates what loop() is given: those iterations count too (and so does its depth)
    refused("{% for x in range(100) recursive %}{{ loop(range(100)) }}{% endfor %}", "nest deeper than")


def test_the_rendered_prompt_is_bounded() -> None:
    line = "{% for i in range(N) %}{{ 'x' * 100 }}{% endfor %}"
    assert len(render(line.replace("N", "999"), {})) == 99_900 + 1
    refused(line.replace("N", "1001"), f"the prompt would be longer than {MAX_OUTPUT_CHARS:,} characters")


@pytest.mark.parametrize("body", [
    "{{ 'x' * 100001 }}",
    "{{ (bars.daily|string) * 100000000 }}",
    "{{ 'x' * 60000 + 'y' * 60000 }}",
    "{% set a = 'x' * 60000 %}{{ a ~ a }}",
    "{% set a = 'x' * 60000 %}{{ [a, a] }}",  # the text str() would print, not the memory a list takes
    "{{ ['x'] * 100000 }}",
    "{% set a = 'x' * 60000 %}{{ '%s%s' % (a, a) }}",
    "{% set a = 'x' * 60000 %}{{ '{0}{0}'.format(a) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{:{}}'.format(1, 10**9) }}",
    "{{ '%.1000000f' % 1.0 }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ 'x'.zfill(10**9) }}",
    "{{ 'a\tb'.expandtabs(10**9) }}",
    "{{ ('x' * 50000).replace('x', 'yyy') }}",
    "{{ ',' .join(['x' * 30000] * 3 + ['y' * 30000]) }}",
    "{% macro m() %}{{ 'x' * 60000 }}{% endmacro %}{% macro m2() %}{{ m() }}{{ m() }}{% endmacro %}{{ m2() }}",
    "{% set b %}{% for i in range(1001) %}{{ 'x' * 100 }}{% endfor %}{% endset %}",
])
def test_no_value_grows_past_the_value_bound(body: str) -> None:
    assert refused(body, f"longer than {MAX_VALUE_CHARS:,} characters|above {MAX_VALUE_CHARS:,}") < 1


def test_the_value_bound_itself_is_allowed() -> None:
    assert len(render("{{ 'x' * 100000 }}", {})) == 100_001
    assert render("{% set a = 'x' * 40000 %}{{ (a ~ a)|length }} {{ [a, a]|length }}", {}) == "80000 2\n"


def test_everything_a_render_produces_is_added_up() -> None:
    """Each value stays under the bound, but together they would take memory: the total is bounded too."""
    keep = ("{% set ns = namespace(keep=[]) %}{% for i in range(2000) %}{% set ns.keep = [ns.keep|length, 'x' * 99000]"
            " %}{% endfor %}")
    refused(keep, f"more than {MAX_WORK_CHARS:,} characters and items in all")
    grow = "{% set ns = namespace(s='') %}{% for i in range(2000) %}{% set ns.s = ns.s ~ 'abcdefghij' %}{% endfor %}"
    refused(grow, f"more than {MAX_WORK_CHARS:,} characters")


def test_a_render_stops_at_its_deadline() -> None:
    body = "{% set s = 'ab' * 50000 %}{% for i in range(10000) %}{% if s.islower() %}{% endif %}{% endfor %}"
    spent = refused(body, "longer than 0.5 s")
    assert spent < 1.5  # the deadline, plus at most one small operation and a noisy machine


def test_macro_recursion_is_a_clear_error_not_a_recursion_error() -> None:
    refused("{% macro r(n) %}{{ r(n+1) }}{% endmacro %}{{ r(0) }}", f"calls nest deeper than {MAX_CALL_DEPTH}")
    refused("{% block a %}{{ self.a() }}{% endblock %}", f"calls nest deeper than {MAX_CALL_DEPTH}")
    nested = "{% macro m(n) %}{% if n %}({{ m(n - 1) }}){% else %}0{% endif %}{% endmacro %}{{ m(5) }}"
    assert render(nested, {}) == "(((((0)))))\n"


def test_integers_are_bounded() -> None:
    refused("{{ 2 ** 100000 }}", "more than 4,096 bits")
    refused("{% set a = 2 ** 4000 %}{{ a * a }}", "more than 4,096 bits")
    assert render("{{ (2 ** 4000) % 1000 }}", {}) == "376\n"


def test_values_that_nest_or_double_are_refused_before_they_can_crash_or_hang() -> None:
    """Hashing a tuple nested 100,000 deep crashes CPython (a C stack overflow); hashing one doubled 60 times
    takes forever while holding the interpreter lock. The old sandbox built both."""
    deep = ("{% set ns = namespace(t=()) %}{% for i in range(9999) %}{% set ns.t = (ns.t,) %}{% endfor %}"
            "{{ {ns.t: 1}|length }}")
    assert refused(deep, f"nests deeper than {MAX_NESTING} levels") < 1
    doubled = ("{% set ns = namespace(t=()) %}{% for i in range(60) %}{% set ns.t = (ns.t, ns.t) %}{% endfor %}"
               "{{ {ns.t: 1}|length }}")
    assert refused(doubled, f"longer than {MAX_VALUE_CHARS:,} characters") < 1


def test_comparing_big_values_is_bounded() -> None:
    """A comparison runs in C with the interpreter lock held: sorting or searching values whose text is far
    past the bound would stall the whole server, so they are refused first."""
    refused("{% set a = 'a' * 50000 %}{{ ('b' ~ a) in [a, a, a, a, a, a, a, a, a, a] }}", "longer than")
    refused("{% set a = 'a' * 50000 %}{{ [a, 'b' ~ a, a]|sort }}", "longer than")


# --------------------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(("body", "expected"), [
    ("{{ 'ab'|center(6) }}|", "ab  |"),
    ("{{ 'a\nb'|indent(2) }}", "a\n  b"),
    ("{{ '%05.1f'|format(close) }}", "005.5"),
    ("{{ 'a-b'|replace('-', '+') }}", "a+b"),
    ("{{ timeframes|join(', ') }}", "daily, weekly"),
    ("{{ [1, 2, 3]|batch(2, 0)|list }}", "[[1, 2], [3, 0]]"),
    ("{{ [1, 2, 3]|sum }}", "6"),
    ("{{ timeframes|map('upper')|join }}", "DAILYWEEKLY"),
    ("{{ {'b': 1, 'a': 2}|dictsort|first }}", "('a', 2)"),
    ("{{ close|round(1) }} {{ close|int }} {{ '3.5'|float }}", "5.5 5 3.5"),
    ("{{ timeframes|tojson }}", '["daily", "weekly"]'),
    ("{{ {'b': '<&>', 'a': 1}|tojson(1) }}", '{\n "a": 1,\n "b": "\\u003c\\u0026\\u003e"\n}'),
    ("{{ close|round(-1) }} {{ 1234|round(-2) }}", "10.0 1200"),
])
def test_bounded_filters_still_do_their_job(body: str, expected: str) -> None:
    assert render(body, {"close": 5.49, "timeframes": ["daily", "weekly"]}) == expected + "\n"


@pytest.mark.parametrize(("body", "match"), [
    ("{{ 'x'|center(1000000000) }}", "center width above 100,000"),
    ("{{ 'a\nb'|indent(1000000000) }}", "indent width above 100,000"),
    ("{{ ('a\n' * 40000)|indent(4) }}", "indent would make a text longer"),
    ("{{ '%01000000000d'|format(1) }}", "%-format would make a text longer"),
    ("{{ '%*d'|format(1000000000, 1) }}", "'\\*' width"),
    ("{{ ('x' * 1000)|replace('', 'y' * 1000) }}", "replace would make a text longer"),
    ("{{ range(2000)|map('string')|join('-' * 100) }}", "join would make a text longer"),
    ("{{ [1]|batch(1000000000, 'x')|list }}", "batch size above 100,000"),
    ("{{ [[1], [2]]|sum(start=[]) }}", "sum adds up numbers only"),
    ("{{ ('ab' * 30000)|list }}", "longer than 100,000 characters"),
    ("{{ 5|round(-1000000000) }}", "round precision beyond ±100"),  # before: 10**(10**9), forever
    ("{{ indicators|tojson(indent=1000000000) }}", "tojson indent above 8"),
    ("{% set a = 'x' * 20000 %}{{ {'a': a, 'b': a, 'c': a, 'd': a, 'e': a}|tojson }}", "longer than 100,000"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", "to_bytes\\(\\) length above 100,000"),
])
def test_filters_that_can_grow_text_check_their_arguments_first(body: str, match: str) -> None:
    assert refused(body, match) < 1


@pytest.mark.parametrize("name", ["random", "wordwrap", "pprint", "urlize", "striptags", "safe", "escape", "e",
                                  "forceescape", "urlencode", "xmlattr"])
def test_filters_left_out_are_refused_when_saving(name: str) -> None:
    with pytest.raises(PromptTemplateError, match=f"filter '{name}' \\(line 1\\) is not allowed.*allowed: abs, attr"):
        validate_template(f"{{{{ symbol|{name} }}}}")


def test_internal_filters_cannot_be_named() -> None:
    with pytest.raises(PromptTemplateError, match="unknown filter '_tt_each'"):
        validate_template("{{ timeframes|_tt_each }}")


# --------------------------------------------------------------------------------------------- the source's shape


@pytest.mark.parametrize(("body", "match"), [
    ("x" * (MAX_BODY_CHARS + 1), "longer than 50,000 characters"),
    ("{{ symbol }}" * 700, f"more than {MAX_TOKENS:,} tokens"),
    ("{{ " + "[" * 60 + "]" * 60 + " }}", f"nests deeper than {MAX_NESTING} levels"),
    ("{{ " + "(" * 990 + "1" + ")" * 990 + " }}", f"nests deeper than {MAX_NESTING} levels"),  # a RecursionError
    ("{{ " + "1 + " * 400 + "1 }}", f"nests deeper than {MAX_NESTING} levels"),
    ("{% if 1 %}" * 60 + "{% endif %}" * 60, f"nests deeper than {MAX_NESTING} levels"),
    ("{% for i in range(1) %}" * 25 + "{% endfor %}" * 25, "too complex to compile"),
    ("{{ " + "9" * 5000 + " }}", "cannot parse template: .*digits"),
    ("{% include 'other' %}", "{% include %} is not available"),
    ("{% extends 'other' %}", "{% extends %} is not available"),
    ("{% import 'other' as o %}", "{% import %} is not available"),
    ("{% from 'other' import x %}", "{% from ... import %} is not available"),
    ("{% autoescape true %}{{ symbol }}{% endautoescape %}", "{% autoescape %} is not available"),
    ("{{ lipsum(1000000) }}", "unknown variable\\(s\\) lipsum"),
])
def test_a_template_the_limits_refuse_is_refused_when_saved(body: str, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(PromptTemplateError, match=match):
        validate_template(body)
    assert time.monotonic() - started < 1


# --------------------------------------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize("body", [
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format(symbol) }}",
    "{{ '{0.__globals__}'.format(range) }}",
    "{{ ('{0.__class__}'|attr('format'))(symbol) }}",
    "{{ '{x.__class__}'.format_map({'x': symbol}) }}",
    "{{ symbol|attr('__class__') }}",
    "{% for x in timeframes %}{{ loop.__class__ }}{% endfor %}",
    "{{ (timeframes|map(attribute='__class__')|first).__mro__ }}",
])
def test_sandbox_escapes_are_still_refused(body: str) -> None:
    validate_template(body)
    with pytest.raises(PromptTemplateError, match="cannot render template: (access to attribute '__|"
                                                  ".* has no attribute '__)"):
        render(body, SAMPLE_VARIABLES)


@pytest.mark.parametrize("body", ["{{ timeframes.append('monthly') }}", "{{ 'abc'.translate({97: 'x'}) }}",
                                  "{{ indicators.daily.clear() }}",
                                  # review: punycode is quadratic (6,000 characters: 8 s inside one step)
                                  "{{ description.encode('punycode') }}", "{{ (symbol * 3).encode('idna') }}",
                                  "{{ symbol.encode().decode('rot13') }}"])
def test_mutation_and_translation_tables_are_refused(body: str) -> None:
    with pytest.raises(PromptTemplateError, match="cannot render template: .*(unsafe|not allowed)"):
        render(body, SAMPLE_VARIABLES)


def test_a_render_outside_the_budget_is_impossible() -> None:
    """The hooks need a render's budget: a template rendered by going around templates.render() fails."""
    from tradetrail.prompts.limits import TemplateLimitError
    from tradetrail.prompts.templates import _compile

    with pytest.raises(TemplateLimitError, match="only inside templates.render"):
        _compile("{{ symbol }}").template.render(symbol="SPX")


# ------------------------------------------------------------------------------------------------- preview values


def test_preview_variables_are_bounded_in_size_and_depth() -> None:
    check_variables({"symbol": "x" * 1000, "indicators": {"daily": {"rsi": 50.0}}})
    with pytest.raises(PromptTemplateError, match=f"longer than {MAX_VARIABLES_CHARS:,} characters"):
        check_variables({"symbol": "x" * MAX_VARIABLES_CHARS})
    with pytest.raises(PromptTemplateError, match=f"longer than {MAX_VARIABLES_CHARS:,} characters"):
        check_variables({"timeframes": ["d"] * 10_000})
    deep: list = []
    for _ in range(20):
        deep = [deep]
    with pytest.raises(PromptTemplateError, match="nest deeper than 6 levels"):
        check_variables({"timeframes": deep})
