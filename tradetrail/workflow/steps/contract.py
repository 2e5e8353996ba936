"""resolve_contract: symbol → contract through the symbol cache."""

from __future__ import annotations

from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.marketdata.port import MarketDataError
from tradetrail.workflow.context import RunContext, StepError, StepOutcome


def resolve_contract(ctx: RunContext) -> StepOutcome:
    cfg = ctx.config
    source = ctx.app.market_data(cfg.market_data.source)
    ctx.step_input.update(symbol=cfg.symbol, source=source.name)
    with ctx.app.Session() as s:
        try:
            resolved = resolve_symbol(s, source, cfg.symbol)
        except MarketDataError as exc:
            raise StepError(f"cannot resolve {cfg.symbol} at {source.name}: {exc}") from exc
    ctx.contract = resolved.contract
    ctx.step_meta.update(cache=resolved.cache, fetched_at=resolved.fetched_at)
    out = {"contract": resolved.contract.to_dict(), "cache": resolved.cache}
    if resolved.note:
        out["note"] = resolved.note
    return StepOutcome(output=out)
