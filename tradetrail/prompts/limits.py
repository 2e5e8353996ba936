"""The bounds every prompt template lives within, so that no template (a user's, or a mistake) can stall or
exhaust the server that also moves the money.

Saving a template only parses and compiles it (nothing is evaluated); every render, in a preview or a run,
counts against these limits and stops with a :class:`~tradetrail.prompts.templates.PromptTemplateError` naming
the one it passed. ``templates.py`` re-exports them; ``GET /api/prompts/limits`` publishes them.
"""

from __future__ import annotations

MAX_BODY_CHARS = 50_000  # a template's source text
# Names, numbers, operators, brackets and pieces of text in a template (the built-in ones have fewer than 150).
# Python's compile() holds the interpreter lock: a 50,000-character template of expressions took ~0.5 s to
# compile, and every other request of the server waited that long.
MAX_TOKENS = 2_000
MAX_NESTING = 50  # blocks and expressions inside each other in a source; lists, tuples and mappings in a value
MAX_OUTPUT_CHARS = 100_000  # the rendered prompt
MAX_VALUE_CHARS = 100_000  # the text of any one value: a string, or str() of a list or mapping with all it holds
MAX_WORK_CHARS = 2_000_000  # characters and items all the operations of one render produce, added up
MAX_STEPS = 10_000  # loop iterations, calls, operators, comparisons, filters and outputs in one render (the
#                    built-in templates take fewer than 20; each step is a few microseconds)
MAX_CALL_DEPTH = 20  # macro calls (and recursive loops) running inside each other
MAX_INT_BITS = 4_096  # integers, about 1,233 digits
MAX_RENDER_SECONDS = 0.5  # wall time of one render
MAX_VARIABLES_CHARS = 20_000  # the text of a preview's own variables
MAX_VARIABLES_NESTING = 6  # ... and how deep they nest


class TemplateLimitError(Exception):
    """A render passed one of the limits. Deliberately not a ValueError or TypeError: library code on the way
    (a filter that falls back on ``except ValueError``) must not swallow it."""


def limits() -> dict[str, float]:
    """The limits by name, for documentation and the API."""
    return {"body_chars": MAX_BODY_CHARS, "tokens": MAX_TOKENS, "nesting": MAX_NESTING,
            "output_chars": MAX_OUTPUT_CHARS, "value_chars": MAX_VALUE_CHARS, "work_chars": MAX_WORK_CHARS,
            "steps": MAX_STEPS, "call_depth": MAX_CALL_DEPTH, "int_bits": MAX_INT_BITS,
            "render_seconds": MAX_RENDER_SECONDS, "preview_variables_chars": MAX_VARIABLES_CHARS,
            "preview_variables_nesting": MAX_VARIABLES_NESTING}
