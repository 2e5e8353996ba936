"""How the model analyst asks an OpenAI-compatible server for JSON, and what it does when a server refuses.

Three modes, tried in this order when the setting is ``auto``:

``json_schema``  ``response_format: {type: json_schema, strict: true}`` with our strict schema (OpenAI, vLLM,
                 recent llama.cpp and LM Studio);
``json_object``  ``response_format: {type: json_object}`` and the schema written into the system prompt (servers
                 that only know JSON mode);
``prompt``       no ``response_format`` at all, the schema in the system prompt, and the reply read as exactly one
                 JSON object (servers that reject the parameter outright).

Whatever the mode, the answer goes through the same strict validation (:class:`AnalystAnswer`); a mode only
changes what the server is asked for, never what we accept. A refusal is a 400/422 whose error names
``response_format`` or the type asked for; which mode a server accepted is remembered per (base URL, model)
for the life of the process, so only the first call pays for the refusals. A remembered mode that is refused
(another server now answers at that URL) starts the order again from the top.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from pydantic import BaseModel

JSON_SCHEMA = "json_schema"
JSON_OBJECT = "json_object"
PROMPT = "prompt"
MODES: tuple[str, ...] = (JSON_SCHEMA, JSON_OBJECT, PROMPT)  # the fallback order; the setting adds "auto"

REFUSAL_STATUSES = frozenset({400, 422})  # 422: how servers built on FastAPI/pydantic reject a value

# --- the strict schema ------------------------------------------------------------------------------------


class NotStrictable(ValueError):
    """The model's JSON schema has a shape strict structured outputs cannot express."""


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema under the strict structured-output rules: every object closed
    (``additionalProperties: false``) with every property required (an optional field stays nullable through
    its ``anyOf``/``type`` list with ``null``), ``default: null`` dropped, and a lone ``allOf`` unwrapped."""
    schema = model.model_json_schema()
    _strict(schema, "#")
    for name, sub in schema.get("$defs", {}).items():
        _strict(sub, f"#/$defs/{name}")
    return schema


def _strict(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise NotStrictable(f"{where}: a schema must be an object")
    if "default" in node and node["default"] is None:
        del node["default"]
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties", False)
        if extra not in (False, None):
            raise NotStrictable(f"{where}: strict mode needs fixed properties (a mapping of any keys is not allowed)")
        props = node.setdefault("properties", {})
        node["additionalProperties"] = False
        node["required"] = list(props)
        for name, sub in props.items():
            _strict(sub, f"{where}/properties/{name}")
    if isinstance(node.get("items"), dict):
        _strict(node["items"], f"{where}/items")
    for key in ("anyOf", "prefixItems"):
        for i, sub in enumerate(node.get(key, [])):
            _strict(sub, f"{where}/{key}/{i}")
    all_of = node.get("allOf")
    if all_of is not None:
        if len(all_of) != 1:
            raise NotStrictable(f"{where}: allOf with {len(all_of)} schemas")
        _strict(all_of[0], f"{where}/allOf/0")
        node.pop("allOf")
        node.update(all_of[0])


# --- what is sent ------------------------------------------------------------------------------------------


def schema_instruction(schema: dict[str, Any]) -> str:
    """The text appended to the system prompt in the modes where the server does not hold the schema."""
    return ("Answer with exactly one JSON object and nothing else (no prose, no code fence). It must validate "
            "against this JSON schema: every property present, null only where the schema allows it, no other "
            "properties.\n" + json.dumps(schema, sort_keys=True, separators=(",", ":")))


def response_format_body(mode: str, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (None: the field is left out)."""
    if mode == JSON_SCHEMA:
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
    if mode == JSON_OBJECT:
        return {"type": "json_object"}
    if mode == PROMPT:
        return None
    raise ValueError(f"unknown response_format mode {mode!r}")


# --- what comes back ---------------------------------------------------------------------------------------


def is_refusal(mode: str, status: int, error_text: str) -> bool:
    """Whether an HTTP error says the server does not take what ``mode`` asked for (its ``response_format``).

    ``error_text`` is the error's message, ``param`` and ``code`` joined. In ``prompt`` mode nothing was asked:
    only an error naming ``response_format`` (the server wants one) refuses it."""
    if status not in REFUSAL_STATUSES:
        return False
    text = error_text.lower()
    if mode == PROMPT:
        return "response_format" in text
    return "response_format" in text or mode in text or mode.replace("_", " ") in text


_FENCED = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL | re.IGNORECASE)


def reply_json(mode: str, content: str) -> str:
    """The JSON text of a reply. In ``prompt`` mode the whole reply may be one code fence (```json ... ```)
    around it, as chat models often write; nothing else is cut away or repaired, so prose around the object,
    two objects or two fences stay invalid JSON."""
    if mode != PROMPT:
        return content
    match = _FENCED.match(content.strip())
    return match.group("body") if match else content


def label(model: str | None, mode: str, cached: bool = False) -> str:
    """The analysis step's label (in its lineage output) for a model's answer: the model and how JSON was asked."""
    return f"model {model} (response_format {mode}{', cached' if cached else ''})"


# --- which mode, per server and model ----------------------------------------------------------------------

_learned: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def remembered(base_url: str, model: str) -> str | None:
    """The mode this process last saw ``model`` at ``base_url`` accept, if any."""
    with _lock:
        return _learned.get((base_url, model))


def remember(base_url: str, model: str, mode: str) -> None:
    with _lock:
        _learned[(base_url, model)] = mode


def forget(base_url: str, model: str) -> None:
    with _lock:
        _learned.pop((base_url, model), None)


def next_untried(refused: list[str]) -> str | None:
    """The mode to try after the modes in ``refused`` were refused in one call (None when all were): the first
    untried one in fallback order. A call starts from the remembered mode; when the server behind the URL has
    changed and refuses it, the modes above it are tried again instead of only those below."""
    return next((m for m in MODES if m not in refused), None)


def forget_all() -> None:
    """Forget every remembered mode (the process's configuration changed; tests start each from nothing)."""
    with _lock:
        _learned.clear()
