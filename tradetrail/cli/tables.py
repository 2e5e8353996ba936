"""Tables that read at 80 columns: short times, numbers with thousands separators, ids cut to the shortest
unique prefix, and columns never narrower than their longest word (a cell wraps between words, never inside
one; a single word wider than the screen is cut with an ellipsis)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich import box
from rich.table import Table

from tradetrail.cli.common import console

MIN_ID = 8
DASH = "—"


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id → its shortest prefix (at least ``MIN_ID`` characters) that no other listed id starts with."""
    ids = list(dict.fromkeys(ids))
    out = {}
    for i in ids:
        n = min(MIN_ID, len(i))
        while n < len(i) and any(o != i and o.startswith(i[:n]) for o in ids):
            n += 1
        out[i] = i[:n]
    return out


def when(value: str | None) -> str:
    """An ISO time as ``2026-11-28 13:38`` (the stored times are UTC)."""
    if not value:
        return DASH
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    return t.strftime("%Y-%m-%d %H:%M")


def num(value, places: int = 2) -> str:
    if value is None:
        return DASH
    return f"{value:,.{places}f}"


def qty(value) -> str:
    """A quantity as it reads: ``16``, ``0.5``, ``1,200``."""
    if value is None:
        return DASH
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def print_table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[str]],
                right: Iterable[int] = ()) -> None:
    """``rows`` are already formatted text; columns numbered in ``right`` (numbers) align right."""
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    right = set(right)
    if title:
        console.print(title, highlight=False, soft_wrap=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for n, header in enumerate(headers):
        longest = max((len(w) for text in [header, *(r[n] for r in rows)] for w in text.split()), default=1)
        table.add_column(header, justify="right" if n in right else "left", overflow="ellipsis",
                         min_width=min(longest, 40))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print()
