"""What a symbol resolves to at one market-data source: the instrument every step and adapter passes on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradetrail.domain.records import as_dict


@dataclass(frozen=True)
class Contract:
    """What a symbol resolves to at one source. ``conid`` is IBKR's contract id when the source is IBKR."""

    source: str
    symbol: str
    name: str
    sec_type: str = "STK"
    exchange: str = ""
    currency: str = "USD"
    conid: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)
