"""What changed between two versions of a prompt template, line by line (the web page's "diff")."""

from __future__ import annotations

import difflib

from tradetrail.services.prompts.user_prompts import prompt_version


def diff_prompt_versions(app, user_id: int, name: str, old: int, new: int) -> list[dict]:
    """The unified diff of two versions as lines, each marked ``add``, ``del``, ``hunk`` or ``same``
    (``NotFound`` for a template or version the user cannot see)."""
    a = prompt_version(app, user_id, name, old)["body"].splitlines()
    b = prompt_version(app, user_id, name, new)["body"].splitlines()
    lines = []
    for line in difflib.unified_diff(a, b, f"v{old}", f"v{new}", lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else \
            "del" if line.startswith("-") else "same"
        lines.append({"kind": kind, "text": line})
    return lines
