"""IBKR Pro commissions for US stocks, per order: ``fixed`` (USD 0.005/share, min 1.00, max 1% of value) and
``tiered`` (first tier: USD 0.0035/share, min 0.35, max 1% of value; exchange, clearing and regulatory fees
are not modelled). ``none`` charges nothing."""

from __future__ import annotations

SCHEDULES = {
    "fixed": (0.005, 1.00, 0.01),
    "tiered": (0.0035, 0.35, 0.01),
    "none": (0.0, 0.0, 0.0),
}


def commission(schedule: str, quantity: float, price: float) -> float:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown commission schedule {schedule!r}; choose {sorted(SCHEDULES)}")
    per_share, minimum, max_pct = SCHEDULES[schedule]
    if per_share == 0:
        return 0.0
    raw = max(per_share * quantity, minimum)
    return round(min(raw, max_pct * quantity * price), 4)


def per_unit_and_minimum(schedule: str) -> tuple[float, float]:
    per_share, minimum, _ = SCHEDULES[schedule]
    return per_share, minimum
