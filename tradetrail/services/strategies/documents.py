"""A strategy written as a document (YAML, or JSON, which is YAML): its configuration under the same schema
as the API's (``StrategyConfig``) and, optionally, its name under a top-level ``name:`` key. Every problem
names its field by its dotted path (``risk.max_position_pct: ...``), as the API's 422 does, so the command
line can print one line per problem."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from tradetrail.schemas.strategy import NAME_PATTERN, StrategyConfig
from tradetrail.services.errors import DocumentError, InvalidStrategy

MAX_DOCUMENT_BYTES = 64 * 1024  # a configuration is ~2 KB; anything far larger is not one


@dataclass(frozen=True)
class StrategyDocument:
    name: str | None  # the ``name:`` key, if the document has one
    config: StrategyConfig


class _Loader(yaml.SafeLoader):
    """Safe YAML without aliases (``*ref`` can multiply a small file into a huge value) and without a key
    given twice (the second would silently replace the first)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load(text: str) -> object:
    if text.lstrip().startswith("{"):  # JSON first: PyYAML refuses some valid JSON (tab indentation)
        try:
            return json.loads(text)
        except ValueError:
            pass
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DocumentError(f"not valid YAML or JSON{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"not valid YAML or JSON: {exc}") from None
    except RecursionError:
        raise DocumentError("not a strategy: nested too deep") from None


def field_problems(exc: ValidationError) -> list[str]:
    """One ``path: message`` per error (never the input value: it may be large)."""
    return [f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()]


def parse_document(text: str) -> StrategyDocument:
    """``DocumentError`` if the text is not a mapping in YAML or JSON; ``InvalidStrategy`` listing every field
    that does not validate."""
    if len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB: not a strategy configuration")
    data = _load(text)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DocumentError(f"not a strategy: the document is {kind}, not a mapping of fields (symbol: ..., "
                            "risk: ...)")
    data = dict(data)
    name = data.pop("name", None)
    problems = []
    if name is not None and not (isinstance(name, str) and re.fullmatch(NAME_PATTERN, name)):
        problems.append("name: 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    try:
        config = StrategyConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidStrategy(problems + field_problems(exc)) from None
    if problems:
        raise InvalidStrategy(problems)
    return StrategyDocument(name, config)


def config_document(detail: dict) -> str:
    """A stored strategy as a document ``parse_document`` reads back: its name, then its configuration."""
    return yaml.safe_dump({"name": detail["name"], **detail["config"]}, sort_keys=False, allow_unicode=True)
