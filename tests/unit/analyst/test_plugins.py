"""Analyst plug-ins: only allowed modules are imported (checked as strings first), params reach the class, and
whatever the plug-in says or raises passes the same checks as any analyst's answer."""

from __future__ import annotations

import sys
import textwrap

import pytest

from tradetrail.analyst.examples.sma_cross import SmaCross
from tradetrail.analyst.plugins import (
    PluginAnalyst,
    PluginError,
    SeriesPluginAnalyst,
    is_allowed,
    load_plugin,
    parse_ref,
    plugin_analyst,
)
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, SeriesAnalyst
from tradetrail.settings import Settings

EXAMPLE = "tradetrail.analyst.examples.sma_cross:SmaCross"
DEFAULT = Settings().analyst_plugins


@pytest.fixture
def foreign(tmp_path, monkeypatch):
    """A package of plug-ins outside tradetrail that writes a marker file when it is imported."""
    marker = tmp_path / "imported"
    pkg = tmp_path / "houseplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "analysts.py").write_text(textwrap.dedent(f"""
        import pathlib
        from tradetrail.analyst.port import AnalysisResult
        from tradetrail.analyst.schema import AnalystAnswer
        pathlib.Path({str(marker)!r}).write_text("yes")

        class Broken:
            name = "broken"
            def analyze(self, request):
                raise RuntimeError("no data for " + request.symbol)

        class Forged:
            name = "forged"
            def analyze(self, request):
                answer = AnalystAnswer.model_construct(action="BUY", confidence=100, trend="bullish", entry=10.0,
                                                       stop_loss=12.0, take_profit=None, key_factors=["x"],
                                                       reasoning="r")
                return AnalysisResult(answer=answer, analyst=self.name)

        class Plain:
            name = "plain"
            def analyze(self, request):
                return {{"action": "HOLD"}}

        class NotAnAnalyst:
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    for name in [m for m in sys.modules if m.startswith("houseplugins")]:
        del sys.modules[name]


def _request() -> AnalysisRequest:
    return AnalysisRequest(symbol="X", as_of="2020-01-01", system_prompt="", timeframe_prompts={}, images=[],
                           indicators={}, confirmation={}, prompt_hash="")


def test_the_bundled_example_is_allowed_by_default_and_built_with_its_params():
    assert DEFAULT == ["tradetrail.analyst.examples"]
    analyst = load_plugin(EXAMPLE, {"fast": 5, "slow": 20}, DEFAULT)
    assert isinstance(analyst, SmaCross) and (analyst.fast, analyst.slow) == (5, 20)
    wrapped = plugin_analyst(EXAMPLE, {"fast": 5, "slow": 20}, DEFAULT)
    assert isinstance(wrapped, SeriesPluginAnalyst) and isinstance(wrapped, SeriesAnalyst)
    assert wrapped.name == "sma_cross" and wrapped.bars_needed() == 21


@pytest.mark.parametrize(("module", "allowed"), [
    ("tradetrail.analyst.examples", True), ("tradetrail.analyst.examples.sma_cross", True),
    ("tradetrail.analyst.examplesx", False), ("tradetrail.analyst", False), ("os", False),
    ("tradetrail.analyst.examples_evil.x", False)])
def test_allowed_modules_are_compared_on_dotted_boundaries(module, allowed):
    assert is_allowed(module, DEFAULT) is allowed


def test_a_module_not_allowed_is_never_imported(foreign):
    with pytest.raises(PluginError, match="not allowed.*TRADETRAIL_ANALYST_PLUGINS"):
        load_plugin("houseplugins.analysts:Broken", {}, DEFAULT)
    assert not foreign.exists() and "houseplugins.analysts" not in sys.modules
    with pytest.raises(PluginError, match="not allowed"):
        load_plugin("os:system", {}, DEFAULT)
    with pytest.raises(PluginError, match="allowed: none"):
        load_plugin(EXAMPLE, {}, [])


@pytest.mark.parametrize("ref", [".relative:X", "a..b:X", "a.b", "a.b:", ":X", "a/b:X", "a.b:X:Y", "a.class:X",
                                 "a.b:X.y", " a.b:X", "", None, 5, "tradetrail.analyst.examples.sma_cross:Sma Cross"])
def test_odd_names_are_refused_before_anything_else(ref):
    with pytest.raises(PluginError, match="package.module:ClassName"):
        parse_ref(ref)


def test_what_cannot_be_loaded_says_why(foreign):
    allowed = ["houseplugins"]
    with pytest.raises(PluginError, match="cannot be imported"):
        load_plugin("houseplugins.missing:X", {}, allowed)
    with pytest.raises(PluginError, match="has no class Nope"):
        load_plugin("houseplugins.analysts:Nope", {}, allowed)
    with pytest.raises(PluginError, match="no analyze method"):
        load_plugin("houseplugins.analysts:NotAnAnalyst", {}, allowed)
    with pytest.raises(PluginError, match="bad params"):
        load_plugin("houseplugins.analysts:Broken", {"speed": 3}, allowed)
    with pytest.raises(PluginError, match="bad params.*shorter"):
        load_plugin(EXAMPLE, {"fast": 30, "slow": 10}, DEFAULT)


def test_a_plugins_exception_fails_with_its_message(foreign):
    analyst = plugin_analyst("houseplugins.analysts:Broken", {}, ["houseplugins"])
    assert type(analyst) is PluginAnalyst and not isinstance(analyst, SeriesAnalyst)
    with pytest.raises(AnalysisFailed, match="RuntimeError: no data for X"):
        analyst.analyze(_request())


@pytest.mark.parametrize(("name", "message"), [("Forged", "(?s)invalid answer.*stop_loss < entry"),
                                               ("Plain", "returned dict, not an AnalysisResult")])
def test_a_plugins_answer_is_validated_like_any_analysts(foreign, name, message):
    with pytest.raises(AnalysisFailed, match=message):
        plugin_analyst(f"houseplugins.analysts:{name}", {}, ["houseplugins"]).analyze(_request())


def test_the_setting_reads_a_list_or_commas_and_refuses_paths(monkeypatch):
    monkeypatch.setenv("TRADETRAIL_ANALYST_PLUGINS", "houseplugins, tradetrail.analyst.examples")
    assert Settings().analyst_plugins == ["houseplugins", "tradetrail.analyst.examples"]
    monkeypatch.setenv("TRADETRAIL_ANALYST_PLUGINS", '["a.b"]')
    assert Settings().analyst_plugins == ["a.b"]
    monkeypatch.setenv("TRADETRAIL_ANALYST_PLUGINS", "../evil")
    with pytest.raises(ValueError, match="dotted module name"):
        Settings()
