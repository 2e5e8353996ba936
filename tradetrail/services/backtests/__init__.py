"""Backtests for the faces: start one (in the background or in the caller's thread), follow its progress,
list them and read a report. The loop itself is :mod:`tradetrail.backtest`."""
