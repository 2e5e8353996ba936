"""The SMA crossover run both ways on one daily frame: our backtest (the SmaCross plug-in, fixed size, no
protective orders, no costs) and backtrader as the reference. Shared by the parity test and
benchmarks/bench_backtest.py, so the two compare and time the same thing.

Both decide on a session's close and fill market orders at the next session's open: our engine places the
order on session t to work from bar t + 1, backtrader's default broker fills a market order at the next bar's
open. Both first decide on the session where the slow SMA is defined on it and on the session before
(row ``slow``): SmaCross needs ``slow + 1`` bars, backtrader's CrossOver has a minimum period of ``slow + 1``.
"""

from __future__ import annotations

from datetime import date

import backtrader as bt
import pandas as pd

from tradetrail.analyst.plugins import plugin_analyst
from tradetrail.backtest.runner import Costs, Outcome, backtest, session_dates
from tradetrail.schemas.strategy import StrategyConfig

SMA_CROSS = "tradetrail.analyst.examples.sma_cross:SmaCross"
ALLOWED = ["tradetrail.analyst.examples"]  # the plug-ins the settings allow by default
NO_COSTS = Costs(commission_schedule="none", slippage_bps=0.0)
START, END = date(1999, 1, 4), date(2018, 12, 31)


def crossover_config(fast: int = 20, slow: int = 50, quantity: int = 1) -> StrategyConfig:
    """The crossover as a strategy: the plug-in decides alone (no 3-of-4 confirmation, no weekly bars), every
    entry is ``quantity`` units without a stop or target, and no limit that could hold a trade back binds
    (consecutive losses, daily loss); the warm-up is the plug-in's (the indicators need fewer bars)."""
    return StrategyConfig.model_validate({
        "symbol": "SPX",
        "market_data": {"source": "sample", "confirmation_timeframe": None, "min_daily_bars": 1,
                        "lookback_days": 60},
        "indicators": {"sma_periods": [20], "ema_periods": [20]},
        "analyst": {"kind": "plugin", "plugin": SMA_CROSS, "params": {"fast": fast, "slow": slow}},
        "signal_policy": {"require_confirmation": False, "require_higher_timeframe": False},
        "risk": {"sizing": "fixed", "quantity": quantity, "max_consecutive_losses": 100,
                 "daily_loss_limit_pct": 100.0, "max_position_pct": 100.0, "max_exposure_pct": 100.0},
        "orders": {"protective": "none", "entry_type": "MKT"},
    })


def run_ours(config: StrategyConfig, bars: pd.DataFrame, start: date = START, end: date = END) -> Outcome:
    """Our backtest of ``config`` with the analyst its configuration names (through the plug-in loader)."""
    analyst = plugin_analyst(config.analyst.plugin, config.analyst.params, ALLOWED)
    return backtest(config, config.symbol, bars, start, end, analyst, execution_id="parity", costs=NO_COSTS)


def closed_trades(outcome: Outcome) -> list[tuple[str, str, float, float]]:
    """(entry date, exit date, entry price, exit price) of every closed round trip."""
    return [(t["entry_date"], t["exit_date"], t["entry_price"], t["exit_price"])
            for t in outcome.report["trades"] if t["exit_date"] is not None]


def first_decision_date(outcome: Outcome) -> str:
    """The first session our run could decide on (past the warm-up), as an exchange date."""
    run = outcome.run
    return session_dates(run.series.times)[run.first + run.warmup].date().isoformat()


def exchange_frame(bars: pd.DataFrame, start: date = START, end: date = END) -> pd.DataFrame:
    """The bars indexed by exchange session date (tz-naive), as backtrader's pandas feed reads them."""
    frame = bars.copy()
    frame.index = session_dates(bars.index)
    return frame.loc[pd.Timestamp(start):pd.Timestamp(end)]


class _Crossover(bt.Strategy):
    params = (("fast", 20), ("slow", 50))

    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.fills: list[tuple[str, str, float]] = []  # (side, date, price)
        self.first_decision: str | None = None

    def next(self) -> None:
        if self.first_decision is None:
            self.first_decision = self.data.datetime.date(0).isoformat()
        if not self.position and self.cross[0] > 0:
            self.buy(size=1)
        elif self.position and self.cross[0] < 0:
            self.close()

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            side = "BUY" if order.isbuy() else "SELL"
            self.fills.append((side, bt.num2date(order.executed.dt).date().isoformat(), order.executed.price))


def run_backtrader(frame: pd.DataFrame, fast: int = 20, slow: int = 50) -> _Crossover:
    """Backtrader's run of the crossover on ``frame``: buy 1 on a cross up while flat, close on a cross down
    while long, no commission, market orders at the next open (its defaults), no observers."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None))
    cerebro.addstrategy(_Crossover, fast=fast, slow=slow)
    cerebro.broker.setcash(100_000.0)
    return cerebro.run()[0]


def backtrader_closed_trades(strategy: _Crossover) -> list[tuple[str, str, float, float]]:
    """Backtrader's fills paired into round trips (a buy, then the sell that closes it)."""
    trades, entry = [], None
    for side, day, price in strategy.fills:
        if side == "BUY":
            if entry is not None:
                raise AssertionError(f"backtrader bought twice without selling ({entry[0]}, {day})")
            entry = (day, price)
        else:
            if entry is None:
                raise AssertionError(f"backtrader sold on {day} with nothing held")
            trades.append((entry[0], day, entry[1], price))
            entry = None
    return trades
