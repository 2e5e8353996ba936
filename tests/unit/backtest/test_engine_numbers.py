"""The numbers the backtest loop derives at once for every session are those the per-session code gives:
the equity rounded as Python rounds it (as the broker reports it), the books carried over sessions where
nothing changed, and the values a decision reads from the indicators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradetrail.backtest.engine import _carried, rounded_6
from tradetrail.backtest.series import Series
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.services.accounts.bootstrap import demo_config


def test_rounded_6_is_pythons_round_where_numpys_is_not() -> None:
    rng = np.random.default_rng(14)
    halves = (rng.integers(0, 10**12, 200_000) + 0.5) / 1e6  # decimal halves at the seventh digit
    cash, close = rng.uniform(9e4, 1.1e5, 200_000).round(4), rng.uniform(500, 3000, 200_000).round(4)
    values = np.concatenate([halves, cash + close, cash - 3 * close, rng.uniform(-1e9, 1e9, 200_000),
                             [0.0, -0.0, 2.5e-6, 3.5e-6, -2.5e-6, 1e17, 1e300, np.inf, -np.inf, np.nan]])
    python = np.array([round(v, 6) for v in values.tolist()])
    assert (np.round(values, 6) != python).sum() > 1000  # numpy's rounding alone would differ here
    got = rounded_6(values)
    assert ((got == python) | (np.isnan(got) & np.isnan(python))).all()


def test_carried_is_a_forward_fill() -> None:
    values = np.array([np.nan, np.nan, 1.0, np.nan, np.nan, -2.0, 0.0, np.nan, 3.5, np.nan])
    np.testing.assert_array_equal(_carried(values), pd.Series(values).ffill().to_numpy())
    assert len(_carried(np.array([]))) == 0


@pytest.mark.parametrize("t", [0, 13, 40, 250, 1999])
def test_latest_view_reads_what_latest_has(t: int) -> None:
    series = Series(demo_config(), "SPX", load_sample_daily("SPX").iloc[:2000])
    full, view = series.latest(t), series.latest_view(t)
    assert list(view) == list(full) and len(view) == len(full)
    assert {k: view[k] for k in reversed(list(full))} == full  # None where a value is not defined yet
    assert view.get("atr") == full["atr"] and view.get("nope", "absent") == "absent"
