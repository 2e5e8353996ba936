"""Technical indicators on a bars frame (see :mod:`tradetrail.domain.bars`), computed with ta-lib.

Every value at row ``t`` uses only bars up to and including ``t`` (no lookahead), so computing on a prefix
of the bars gives the same rows as computing on the whole series. Recursive indicators (EMA, RSI, ATR,
ADX, SuperTrend) are seeded at the first bar of the frame, so their values depend on how much history the
caller passes in: fetch a fixed number of bars for reproducible runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import talib

from tradetrail.domain.bounds import Bound
from tradetrail.domain.records import as_dict
from tradetrail.domain.supertrend import supertrend

PERIOD_RANGE = (2, 500)
SMOOTHING_RANGE = (1, 500)
BB_STD_RANGE = (0.5, 5.0)
MULTIPLIER_RANGE = (0.5, 10.0)
MAX_MA_PERIODS = 5
REQUIRED_SMA = 20  # the 3-of-4 confirmation compares close with SMA20
SIGNIFICANT_DIGITS = 8

_PERIOD_FIELDS = ("rsi_period", "macd_fast", "macd_slow", "macd_signal", "atr_period", "bb_period",
                  "supertrend_period", "stoch_k", "adx_period")
_SMOOTHING_FIELDS = ("stoch_smooth_k", "stoch_d")

# Every scalar setting's range, as data: checked in __post_init__ and stated by the strategy schema. The MACD
# pair is narrowed by one so that each end of a range is reachable (macd_fast < macd_slow).
PARAM_BOUNDS: dict[str, Bound] = {
    **{name: Bound(*PERIOD_RANGE, whole=True) for name in _PERIOD_FIELDS},
    "macd_fast": Bound(PERIOD_RANGE[0], PERIOD_RANGE[1] - 1, whole=True),
    "macd_slow": Bound(PERIOD_RANGE[0] + 1, PERIOD_RANGE[1], whole=True),
    **{name: Bound(*SMOOTHING_RANGE, whole=True) for name in _SMOOTHING_FIELDS},
    "bb_std": Bound(*BB_STD_RANGE),
    "supertrend_multiplier": Bound(*MULTIPLIER_RANGE),
}


def _fail(name: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"IndicatorParams.{name} must be {allowed}, got {value!r}")


def _is_int_in(value: object, lo: int, hi: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, Integral) and lo <= int(value) <= hi


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if not _is_int_in(value, lo, hi):
        raise _fail(name, value, f"an integer in {lo}..{hi}")
    return int(value)


def _check_float(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not lo <= float(value) <= hi:
        raise _fail(name, value, f"a number in {lo}..{hi}")
    return float(value)


def _check_periods(name: str, value: object, required: int | None) -> tuple[int, ...]:
    allowed = f"up to {MAX_MA_PERIODS} distinct integers in {PERIOD_RANGE[0]}..{PERIOD_RANGE[1]}"
    if required is not None:
        allowed += f" including {required}"
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise _fail(name, value, allowed)
    items = list(value)  # type: ignore[call-overload]
    bad_item = not all(_is_int_in(p, *PERIOD_RANGE) for p in items)
    if (bad_item or len(items) > MAX_MA_PERIODS or len(set(items)) != len(items)
            or (required is not None and required not in items)):
        raise _fail(name, value, allowed)
    return tuple(int(p) for p in items)


@dataclass(frozen=True)
class IndicatorParams:
    """Indicator settings for one workflow; invalid settings fail at construction, naming the field.

    Rules (:data:`PARAM_BOUNDS`): lookback periods are integers in 2..500 (``macd_fast`` up to 499,
    ``macd_slow`` from 3), stochastic smoothing in 1..500, ``bb_std`` in 0.5..5, ``supertrend_multiplier`` in
    0.5..10, ``macd_fast < macd_slow``; ``sma_periods`` and ``ema_periods``
    hold at most 5 distinct periods (order kept) and ``sma_periods`` must include 20 because the 3-of-4
    confirmation compares close with SMA20. Works as a pydantic v2 field type (lists become tuples and a
    ValueError here becomes a ValidationError).
    """

    sma_periods: tuple[int, ...] = (20, 50, 200)
    ema_periods: tuple[int, ...] = (20, 50, 200)
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    atr_period: int = 14
    bb_period: int = 20
    bb_std: float = 2.0
    supertrend_period: int = 10
    supertrend_multiplier: float = 3.0
    stoch_k: int = 14
    stoch_smooth_k: int = 3
    stoch_d: int = 3
    adx_period: int = 14

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalise in place (lists -> tuples, numpy ints -> int)
        put(self, "sma_periods", _check_periods("sma_periods", self.sma_periods, REQUIRED_SMA))
        put(self, "ema_periods", _check_periods("ema_periods", self.ema_periods, None))
        for name, bound in PARAM_BOUNDS.items():
            check = _check_int if bound.whole else _check_float
            put(self, name, check(name, getattr(self, name), bound.lo, bound.hi))
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"IndicatorParams.macd_fast must be less than macd_slow, got macd_fast="
                             f"{self.macd_fast} and macd_slow={self.macd_slow}")

    def lookbacks(self) -> dict[str, int]:
        """Per output column, the index of its first defined value (ta-lib's lookback)."""
        out = {f"sma_{n}": n - 1 for n in self.sma_periods}
        out.update({f"ema_{n}": n - 1 for n in self.ema_periods})
        macd = self.macd_slow + self.macd_signal - 2
        stoch = self.stoch_k + self.stoch_smooth_k + self.stoch_d - 3  # ta-lib trims %K to %D's start
        bb = self.bb_period - 1
        out.update(
            rsi=self.rsi_period, macd=macd, macd_signal=macd, macd_hist=macd, atr=self.atr_period,
            bb_upper=bb, bb_middle=bb, bb_lower=bb, obv=0, stoch_k=stoch, stoch_d=stoch,
            adx=2 * self.adx_period - 1,
        )
        out.update({c: self.supertrend_period for c in _SUPERTREND_COLUMNS})
        return {c: out[c] for c in indicator_columns(self)}

    def warmup_bars(self) -> int:
        """Bars needed so every configured indicator has a defined latest value."""
        return max(self.lookbacks().values()) + 1

    def to_dict(self) -> dict:
        """JSON-friendly settings (periods as lists)."""
        out = as_dict(self)
        out["sma_periods"] = list(self.sma_periods)
        out["ema_periods"] = list(self.ema_periods)
        return out


_SUPERTREND_COLUMNS = ("supertrend", "supertrend_dir", "supertrend_upper", "supertrend_lower")


def indicator_columns(params: IndicatorParams) -> tuple[str, ...]:
    """The columns :func:`compute_indicators` returns for ``params``, in order."""
    return (
        *(f"sma_{n}" for n in params.sma_periods), *(f"ema_{n}" for n in params.ema_periods),
        "rsi", "macd", "macd_signal", "macd_hist", "atr", "bb_upper", "bb_middle", "bb_lower",
        *_SUPERTREND_COLUMNS, "obv", "stoch_k", "stoch_d", "adx",
    )


def _column(bars: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(bars[name].to_numpy(), dtype=np.float64)


def _columns(bars: pd.DataFrame, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """:func:`_column` of each name, taken from the frame's one float array when it has one (a bars frame does:
    one pandas call instead of one per column), else column by column."""
    values, columns = bars.to_numpy(), bars.columns
    if values.dtype == np.float64 and values.ndim == 2 and columns.is_unique:
        return tuple(np.ascontiguousarray(values[:, columns.get_loc(name)]) for name in names)
    return tuple(_column(bars, name) for name in names)


def compute_indicators(bars: pd.DataFrame, params: IndicatorParams) -> pd.DataFrame:
    """All configured indicators for ``bars`` (same index), NaN during each indicator's warm-up."""
    return pd.DataFrame(indicator_arrays(bars, params), index=bars.index, dtype=np.float64)


def indicator_arrays(bars: pd.DataFrame, params: IndicatorParams) -> dict[str, np.ndarray]:
    """The columns of :func:`compute_indicators` as float arrays, in order (a backtest reads them by row)."""
    return dict(IndicatorColumns(bars, params))


class IndicatorColumns(Mapping):
    """The columns of :func:`compute_indicators` by name, in its order, each indicator computed on the first
    read of one of its columns (a backtest whose rules read only the ATR does not pay for the SuperTrend).
    Every indicator is computed from the same inputs on its own, so a column is the same array whether it
    was read alone or with all the others (:func:`indicator_arrays` reads them all)."""

    def __init__(self, bars: pd.DataFrame, params: IndicatorParams):
        missing = [c for c in ("high", "low", "close", "volume") if c not in bars.columns]
        if missing:
            raise ValueError(f"compute_indicators: bars are missing columns {missing}")
        self._bars, self._params = bars, params
        self._names = tuple(dict.fromkeys(indicator_columns(params)))
        self._known = frozenset(self._names)
        self._inputs: tuple[np.ndarray, ...] | None = None
        self._values: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            if name not in self._known:
                raise KeyError(name)
            self._values.update(self._indicator(name))
        return self._values[name]

    def __contains__(self, name: object) -> bool:  # a configured column, computed or not (reading it computes it)
        return name in self._known

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def _indicator(self, name: str) -> dict[str, np.ndarray]:
        """Every column of the indicator ``name`` belongs to."""
        if len(self._bars) == 0:
            return {name: np.array([], dtype=np.float64)}
        if self._inputs is None:  # the volume only when the OBV is read (no other indicator reads it)
            self._inputs = _columns(self._bars, ("high", "low", "close"))
        h, lo, c = self._inputs
        p = self._params
        if name.startswith("sma_"):
            out = {name: talib.SMA(c, timeperiod=int(name[4:]))}
        elif name.startswith("ema_"):
            out = {name: talib.EMA(c, timeperiod=int(name[4:]))}
        elif name == "rsi":
            out = {name: talib.RSI(c, timeperiod=p.rsi_period)}
        elif name in ("macd", "macd_signal", "macd_hist"):
            out = dict(zip(("macd", "macd_signal", "macd_hist"), talib.MACD(
                c, fastperiod=p.macd_fast, slowperiod=p.macd_slow, signalperiod=p.macd_signal), strict=True))
        elif name == "atr":
            out = {name: talib.ATR(h, lo, c, timeperiod=p.atr_period)}
        elif name in ("bb_upper", "bb_middle", "bb_lower"):
            out = dict(zip(("bb_upper", "bb_middle", "bb_lower"), talib.BBANDS(
                c, timeperiod=p.bb_period, nbdevup=p.bb_std, nbdevdn=p.bb_std, matype=talib.MA_Type.SMA),
                strict=True))
        elif name in _SUPERTREND_COLUMNS:
            st = supertrend(h, lo, c, period=p.supertrend_period, multiplier=p.supertrend_multiplier)
            out = dict(zip(_SUPERTREND_COLUMNS, (st.line, st.direction, st.final_upper, st.final_lower), strict=True))
        elif name == "obv":
            out = {name: talib.OBV(c, _column(self._bars, "volume"))}
        elif name in ("stoch_k", "stoch_d"):
            out = dict(zip(("stoch_k", "stoch_d"), talib.STOCH(
                h, lo, c, fastk_period=p.stoch_k, slowk_period=p.stoch_smooth_k, slowk_matype=talib.MA_Type.SMA,
                slowd_period=p.stoch_d, slowd_matype=talib.MA_Type.SMA), strict=True))
        else:  # adx
            out = {name: talib.ADX(h, lo, c, timeperiod=p.adx_period)}
        return {k: np.asarray(a, dtype=np.float64) for k, a in out.items()}


def plain(value: object) -> float | None:
    """One value as :func:`latest_values` gives it: a float of 8 significant digits, None for NaN or inf."""
    return _plain(value)


def _plain(value: object) -> float | None:
    x = float(value)  # type: ignore[arg-type]
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(x) else None


def latest_values(frame: pd.DataFrame, bars: pd.DataFrame | None = None) -> dict[str, float | None]:
    """The last row as plain floats rounded to 8 significant digits (NaN -> None), plus ``close`` from bars.

    Eight digits keep prices exact to well below a tick, so close-vs-SMA comparisons on these values do
    not tie spuriously, while staying short in prompts and JSON.
    """
    if len(frame) == 0:
        raise ValueError("latest_values: the indicator frame is empty")
    out: dict[str, float | None] = {}
    if bars is not None:
        if len(bars) == 0 or bars.index[-1] != frame.index[-1]:
            raise ValueError("latest_values: the last bar and the last indicator row are not the same time")
        out["close"] = _plain(bars["close"].iloc[-1])
    out.update({str(name): _plain(value) for name, value in frame.iloc[-1].items()})
    return out


def values_at(columns: Mapping[str, np.ndarray], close: np.ndarray, row: int) -> dict[str, float | None]:
    """What :func:`latest_values` gives for the bars up to ``row``, read from whole-series columns (the
    indicators are causal, so row ``row`` of the whole series is the last row of that prefix)."""
    out: dict[str, float | None] = {"close": _plain(close[row])}
    out.update({name: _plain(values[row]) for name, values in columns.items()})
    return out


def rounded(values: np.ndarray) -> np.ndarray:
    """Every value as :func:`latest_values` rounds it (NaN where it gives None), for whole-series rules."""
    return np.array([np.nan if (x := _plain(v)) is None else x for v in values.tolist()], dtype=np.float64)
