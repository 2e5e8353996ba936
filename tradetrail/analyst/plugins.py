"""Analyst plug-ins: a strategy names a class (``package.module:ClassName``) that implements the analyst port.

Only modules the operator allows (``TRADETRAIL_ANALYST_PLUGINS``, module prefixes on dotted boundaries; the
bundled examples by default) can be named, and the name is checked as a string before anything is imported:
an API user cannot make the server import arbitrary code. The class gets the strategy's ``params`` as keyword
arguments. Its answers go through the same validation as any analyst's (:class:`AnalystAnswer`), and anything
it raises becomes :class:`AnalysisFailed` with its message: a plug-in can fail a run, never invent an answer.
"""

from __future__ import annotations

import importlib
import keyword
from collections.abc import Iterable
from dataclasses import fields, replace
from typing import Any

from pydantic import ValidationError

from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult, AnalysisSeries, SeriesAnswers
from tradetrail.analyst.schema import AnalystAnswer

REF_MAX = 200
NAME_MAX = 32  # the analyses table's analyst column
_EVERY_FIELD = frozenset(f.name for f in fields(AnalysisResult))


class PluginError(ValueError):
    """The plug-in cannot be used as named: not allowed, not found, not an analyst, or bad params."""


def parse_ref(ref: object) -> tuple[str, str]:
    """``package.module:ClassName`` as (module, class name); anything else (relative, empty parts, keywords,
    paths) is refused with the reason."""
    if not isinstance(ref, str) or len(ref) > REF_MAX or ref.count(":") != 1:
        raise PluginError(f"a plug-in is named package.module:ClassName, got {ref!r}")
    module, name = ref.split(":")
    parts = module.split(".")
    if not all(_identifier(p) for p in parts) or not _identifier(name):
        raise PluginError(f"a plug-in is named package.module:ClassName with an absolute module path of Python "
                          f"identifiers, got {ref!r}")
    return module, name


def _identifier(part: str) -> bool:
    """A public identifier: no keyword, nothing non-ASCII, no leading underscore (``__init__`` or a private
    module would reach code the allowed package does not offer as a plug-in)."""
    return part.isidentifier() and part.isascii() and not keyword.iskeyword(part) and not part.startswith("_")


def is_allowed(module: str, allowed: Iterable[str]) -> bool:
    """``module`` is one of ``allowed`` or inside one of them (``a.b`` allows ``a.b`` and ``a.b.c``, not ``a.bc``)."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed if prefix)


def check_allowed(ref: str, allowed: Iterable[str]) -> tuple[str, str]:
    """Refuse a plug-in whose module the operator does not allow; nothing is imported."""
    module, name = parse_ref(ref)
    allowed = list(allowed)
    if not is_allowed(module, allowed):
        listed = ", ".join(allowed) or "none"
        raise PluginError(f"plug-in {ref!r} is not allowed: its module is not under TRADETRAIL_ANALYST_PLUGINS "
                          f"(allowed: {listed})")
    return module, name


def load_plugin(ref: str, params: dict[str, Any], allowed: Iterable[str]) -> Any:
    """The plug-in's analyst, built with ``params``; :class:`PluginError` says why it cannot be."""
    module_name, name = check_allowed(ref, allowed)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import that fails in any way is the plug-in's error, not a 500
        raise PluginError(f"plug-in {ref!r}: module {module_name} cannot be imported: "
                          f"{type(exc).__name__}: {exc}") from exc
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise PluginError(f"plug-in {ref!r}: {module_name} has no class {name}")
    if not callable(getattr(cls, "analyze", None)):
        raise PluginError(f"plug-in {ref!r}: {name} does not implement the analyst port (no analyze method)")
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - as for the import
        raise PluginError(f"plug-in {ref!r}: bad params {params!r}: {type(exc).__name__}: {exc}") from exc


def plugin_analyst(ref: str, params: dict[str, Any], allowed: Iterable[str]) -> PluginAnalyst:
    """The plug-in behind the checks every answer passes (a whole-series one keeps its series method)."""
    inner = load_plugin(ref, params, allowed)
    wrapper = SeriesPluginAnalyst if callable(getattr(inner, "analyze_series", None)) else PluginAnalyst
    return wrapper(inner, ref)


class PluginAnalyst:
    """Asks the plug-in and checks what it says: its answer is validated as any analyst's; an exception from it
    is an :class:`AnalysisFailed` with its message."""

    def __init__(self, inner: Any, ref: str):
        self.inner, self.ref = inner, ref
        # Recorded as "plugin:<its name>": a plug-in can never pass for the rules or a model in the trail
        self.name = f"plugin:{str(getattr(inner, 'name', '') or 'plugin')}"[:NAME_MAX]
        self.model = None

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        try:
            result = self.inner.analyze(request)
        except AnalysisFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code fails the step, with its message
            raise AnalysisFailed(f"plug-in {self.ref} failed: {type(exc).__name__}: {exc}",
                                 {"plugin": self.ref}) from exc
        return self._checked(result)

    def _checked(self, result: object) -> AnalysisResult:
        if not isinstance(result, AnalysisResult):
            raise AnalysisFailed(f"plug-in {self.ref} returned {type(result).__name__}, not an AnalysisResult",
                                 {"plugin": self.ref})
        answer = result.answer
        raw = answer.model_dump() if isinstance(answer, AnalystAnswer) else answer
        try:  # again from the fields: an answer built with model_construct skipped the validation
            valid = AnalystAnswer.model_validate(raw)
        except ValidationError as exc:
            raise AnalysisFailed(f"plug-in {self.ref} gave an invalid answer: {exc}",
                                 {"plugin": self.ref, "answer": repr(raw)[:2000]}) from exc
        if not isinstance(result.extra, dict):
            raise AnalysisFailed(f"plug-in {self.ref} returned extra of type {type(result.extra).__name__}, not a "
                                 "dict", {"plugin": self.ref})
        label = result.extra.get("label")
        extra = {**result.extra, "label": f"plug-in {self.ref}" + (f": {str(label)[:200]}" if label else "")}
        latency = result.latency_ms if isinstance(result.latency_ms, (int, float)) else None  # a tuple: faster than |
        raw = result.raw if isinstance(result.raw, str) else None
        # What the trail says about who answered comes from us, not from the plug-in: never a model, never cached.
        checked = {"answer": valid, "analyst": self.name, "model": None, "cached": False, "prompt_tokens": None,
                   "completion_tokens": None, "attempts": 1, "latency_ms": latency, "raw": raw and raw[:100_000],
                   "extra": extra}
        if _EVERY_FIELD.issubset(checked) and type(result) is AnalysisResult:  # what replace() builds, directly
            return AnalysisResult(**checked)
        return replace(result, **checked)


class SeriesPluginAnalyst(PluginAnalyst):
    """A plug-in that also answers a whole series: the full answers it gives are checked the same way."""

    def analyze_series(self, series: AnalysisSeries) -> SeriesAnswers:
        try:
            answers = self.inner.analyze_series(series)
        except Exception as exc:  # noqa: BLE001 - as in analyze
            raise AnalysisFailed(f"plug-in {self.ref} failed: {type(exc).__name__}: {exc}",
                                 {"plugin": self.ref}) from exc

        def result(t: int) -> AnalysisResult:
            try:
                found = answers.result(t)
            except AnalysisFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - as in analyze
                raise AnalysisFailed(f"plug-in {self.ref} failed: {type(exc).__name__}: {exc}",
                                     {"plugin": self.ref}) from exc
            return self._checked(found)

        return SeriesAnswers(actions=answers.actions, result=result)

    def bars_needed(self) -> int:
        need = getattr(self.inner, "bars_needed", None)
        return int(need()) if callable(need) else 1
