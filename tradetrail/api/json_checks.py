"""Checks of a JSON request body before any route parses it: UTF-8, nesting depth, well-formed, and text
that can be stored and sent back.

PostgreSQL cannot store a NUL character in text (SQLite can), so a NUL anywhere in a body — a value or a key —
is refused up front, the same on both backends, naming where it is; so is a lone surrogate escape
(``"\\ud800"``), which no database driver or JSON answer can encode as UTF-8. Parsing is Python's C parser (linear
in the body; it refuses nesting past the interpreter's recursion limit with RecursionError instead of
recursing on); the depth and text checks then walk the parsed value without recursion. No regular expression
scans the raw body: an unclosed string full of escaped quotes made the earlier one take quadratic time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_NAMED_PATH = 10  # how many levels of a bad string's location are named (``body.config.risk...``)


@dataclass(frozen=True)
class BodyProblem:
    field: str
    message: str


def is_json_media_type(content_type: str | None) -> bool:
    """What FastAPI parses as JSON (``application/json`` or ``application/*+json``); other bodies it leaves."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


NUL_MESSAGE = "NUL characters (\\u0000) are not accepted anywhere in a request"
SURROGATE_MESSAGE = "a lone surrogate (\\ud800-\\udfff) is not text; send the character itself, or a pair"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def bad_text(value, max_depth: int | None = None) -> BodyProblem | None:
    """The first string (value or key) that cannot be stored, where it is (``body.a.0.b``, or ``body.a.<key>``
    for a key) and why, or arrays/objects nested deeper than ``max_depth``; walked without recursion."""
    stack: list[tuple[object, tuple]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if problem := _text_problem(item):
                return BodyProblem(_name(path), problem)
            continue
        if not isinstance(item, dict | list):
            continue
        if max_depth is not None and len(path) >= max_depth:  # this container is level len(path) + 1
            return BodyProblem("body", f"JSON nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if problem := _text_problem(key):
                    return BodyProblem(_name((*path, "<key>")), problem)
                stack.append((child, (*path, key)))
        else:
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
    return None


def _name(path: tuple) -> str:
    shown = path[:_MAX_NAMED_PATH]
    return ".".join(["body", *(str(p)[:64] for p in shown)]) + (".…" if len(path) > len(shown) else "")


def check_json_body(raw: bytes, max_depth: int) -> BodyProblem | None:
    """The first thing wrong with ``raw`` as a JSON request body, or None."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return BodyProblem("body", f"the body is not UTF-8 (byte {exc.start}); JSON must be UTF-8")
    try:
        value = json.loads(text)
    except RecursionError:  # nested past the interpreter's recursion limit (~1,000), far past max_depth
        return BodyProblem("body", f"JSON nested deeper than {max_depth} levels")
    except json.JSONDecodeError as exc:
        return BodyProblem("body", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return BodyProblem("body", f"the body is not acceptable JSON: {str(exc)[:200]}")
    return bad_text(value, max_depth)
