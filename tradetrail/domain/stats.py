"""Trading statistics from closed trades and an equity curve."""

from __future__ import annotations

from dataclasses import dataclass

from tradetrail.domain.records import as_dict


@dataclass(frozen=True)
class TradeResult:
    pnl: float
    r_multiple: float | None


@dataclass(frozen=True)
class Statistics:
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    average_win: float | None
    average_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    average_r: float | None
    max_drawdown: float
    max_drawdown_pct: float | None

    def to_dict(self) -> dict:
        return as_dict(self)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def max_drawdown(equity: list[float]) -> tuple[float, float | None]:
    """Largest peak-to-trough fall in money, and largest fall in percent of its peak (the two may come from
    different falls: 100 → 50 is 50 % and 50 in money; 200 → 120 is 40 % and 80 in money)."""
    peak, worst, worst_pct = None, 0.0, None
    for value in equity:
        peak = value if peak is None or value > peak else peak
        fall = peak - value
        worst = max(worst, fall)
        if peak > 0 and fall > 0:
            pct = fall / peak * 100
            worst_pct = pct if worst_pct is None else max(worst_pct, pct)
    return round(worst, 4), (round(worst_pct, 4) if worst_pct is not None else None)


def statistics(trades: list[TradeResult], equity: list[float]) -> Statistics:
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [t.pnl for t in trades if t.pnl <= 0]
    gross_loss = -sum(losses)
    rs = [t.r_multiple for t in trades if t.r_multiple is not None]
    dd, dd_pct = max_drawdown(equity)
    return Statistics(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=round(len(wins) / len(trades) * 100, 2) if trades else None,
        profit_factor=round(sum(wins) / gross_loss, 4) if gross_loss > 0 else None,
        average_win=_mean(wins), average_loss=_mean(losses),
        largest_win=max(wins) if wins else None, largest_loss=min(losses) if losses else None,
        average_r=_mean(rs), max_drawdown=dd, max_drawdown_pct=dd_pct)


def consecutive_losses(pnls_newest_first) -> int:
    """How many closed trades in a row, newest first, did not make money (a break-even trade counts)."""
    losses = 0
    for pnl in pnls_newest_first:
        if pnl > 0:
            break
        losses += 1
    return losses
