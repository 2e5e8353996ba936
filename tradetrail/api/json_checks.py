"""Checks of a JSON request body before any route parses it: UTF-8, nesting depth, well-formed, and text
that can be stored and sent back.

PostgreSQL cannot store a NUL character in text (SQLite can), so a NUL anywhere in a body — a value or a key —
is refused up front, the same on both backends, naming where it is; so is a lone surrogate escape
(``"\\ud800"``), which no database driver or JSON answer can encode as UTF-8. The depth check runs before the parser
(Python's ``json`` recurses once per level) and does not recurse itself: strings are cut out with one regular
expression, then innermost ``[]``/``{}`` pairs are removed one level per pass, at most ``max_depth`` passes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_PAIR = re.compile(r"\[\]|\{\}")
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


def deeper_than(text: str, max_depth: int) -> bool | None:
    """True if arrays/objects nest deeper than ``max_depth``; None if the brackets do not balance (malformed)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        reduced = _PAIR.sub("", brackets)
        if reduced == brackets:
            return None
        brackets = reduced
    if not brackets:
        return False
    return True if _PAIR.search(brackets) else None


NUL_MESSAGE = "NUL characters (\\u0000) are not accepted anywhere in a request"
SURROGATE_MESSAGE = "a lone surrogate (\\ud800-\\udfff) is not text; send the character itself, or a pair"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def bad_text(value) -> BodyProblem | None:
    """The first string (value or key) that cannot be stored, where it is (``body.a.0.b``, or ``body.a.<key>``
    for a key) and why; walked without recursion."""
    stack: list[tuple[object, tuple]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if problem := _text_problem(item):
                return BodyProblem(_name(path), problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                if problem := _text_problem(key):
                    return BodyProblem(_name((*path, "<key>")), problem)
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
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
    depth = deeper_than(text, max_depth)
    if depth:
        return BodyProblem("body", f"JSON nested deeper than {max_depth} levels")
    if depth is None:  # valid JSON always balances; the parser is not run on what might nest without end
        return BodyProblem("body", "the body is not valid JSON: its brackets do not balance")
    try:
        value = json.loads(text)
    except RecursionError:  # cannot happen after the depth check; kept so a parser change cannot become a 500
        return BodyProblem("body", f"JSON nested deeper than {max_depth} levels")
    except json.JSONDecodeError as exc:
        return BodyProblem("body", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return BodyProblem("body", f"the body is not acceptable JSON: {str(exc)[:200]}")
    return bad_text(value)
