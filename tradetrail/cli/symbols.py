"""The ``symbols`` group: search contracts and the symbol cache's figures."""

from __future__ import annotations

from typing import Annotated

import typer

from tradetrail.cli.common import (
    JsonOpt,
    _app,
    _emit,
    _fail,
    _print_rows,
    console,
)

symbols_app = typer.Typer(no_args_is_help=True, help="The symbol cache.")


@symbols_app.command("search")
def symbols_search(query: str, as_json: JsonOpt = False,
                   limit: Annotated[int, typer.Option(min=1, max=50)] = 20) -> None:
    """Search the configured source by ticker or name (answers are cached)."""
    from tradetrail.catalogue.symbols import search_symbols
    from tradetrail.marketdata.port import MarketDataError

    try:
        rows = search_symbols(_app(), query, limit=limit)
    except MarketDataError as exc:
        _fail(str(exc))
    _emit(rows, as_json, lambda r: _print_rows(f"symbols matching {query!r}", r, [
        c for c in ("symbol", "conid", "name", "sec_type", "exchange", "currency", "cache") if r and c in r[0]]))


@symbols_app.command("stats")
def symbols_stats(as_json: JsonOpt = False) -> None:
    """Cache statistics: total, by asset type, stale rows, top exchanges."""
    from tradetrail.catalogue.symbols import cache_stats

    data = cache_stats(_app())
    _emit(data, as_json, lambda d: console.print_json(data=d))
