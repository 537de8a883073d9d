"""Per-symbol technical features (pure functions, TA-Lib where TA-Lib has the indicator).

Every feature at row ``t`` uses only rows at or before ``t`` (all rolling windows are
trailing, all recursive indicators run forward) and is scale-invariant: it is a return, a
ratio of two price quantities, an oscillator or a z-score, never a price level. The formula
of each feature and its source are in :data:`vfr.features.FEATURES`.

Rows whose open/high/low/close is missing or not positive, or whose volume is missing or
negative, are *invalid*: they get NaN features and are skipped by the indicators (a window of
``n`` days then means the last ``n`` valid rows). Histories shorter than a window give NaN
(warm-up) for that feature, never an exception.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from vfr.errors import DataValidationError
from vfr.features.definitions import FEATURES

#: Input columns every prices frame must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("symbol", "date", "open", "high", "low", "close", "volume")

#: Annualisation factor for daily volatility (trading days per year).
TRADING_DAYS_PER_YEAR = 252

_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
_INDEX: dict[str, int] = {name: i for i, name in enumerate(_NAMES)}
#: Relative threshold below which a spread (std, band width, high-low range) counts as zero.
_EPS = 1e-12


def check_columns(prices: pd.DataFrame, what: str = "prices") -> None:
    """Raise :class:`~vfr.errors.DataValidationError` if a required column is missing.

    Parameters
    ----------
    prices : pandas.DataFrame
        Frame to check.
    what : str
        Name of the frame used in the message.

    Raises
    ------
    DataValidationError
        Naming the first missing column of :data:`REQUIRED_COLUMNS`.
    """
    for col in REQUIRED_COLUMNS:
        if col not in prices.columns:
            raise DataValidationError(f"{what} frame lacks a required column", column=col)


def _rolling(x: np.ndarray, window: int) -> pd.core.window.Rolling:
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


def _safe_div(num: np.ndarray, den: np.ndarray, scale: np.ndarray | float = 0.0) -> np.ndarray:
    """``num / den``, NaN where ``|den| <= _EPS * |scale|`` (so also where ``den == 0``)."""
    den = np.asarray(den, dtype=float)
    bad = ~(np.abs(den) > _EPS * np.abs(scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / np.where(bad, 1.0, den)
    out[bad] = np.nan
    return out


def _snap(x: np.ndarray, decimals: int) -> np.ndarray:
    """Round away float noise so that exact ties (e.g. %K = 100 when the close is the
    high) survive different but equivalent adjustments (``close * factor`` versus the
    provider's ``adjusted_close``); far below float32 resolution of the output."""
    return np.round(x, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def _shift_ratio(x: np.ndarray, n: int) -> np.ndarray:
    """``x[t] / x[t-n] - 1`` with NaN for ``t < n``."""
    out = np.full(x.shape, np.nan)
    if x.size > n:
        out[n:] = x[n:] / x[:-n] - 1.0
    return out


def feature_matrix(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                   volume: np.ndarray) -> np.ndarray:
    """Compute all technical features of one symbol as a matrix.

    Parameters
    ----------
    open_, high, low, close : numpy.ndarray, shape (n,)
        Adjusted prices in date order (USD; any constant scale).
    volume : numpy.ndarray, shape (n,)
        Adjusted volume (shares; any constant scale, reciprocal to the prices').

    Returns
    -------
    numpy.ndarray, shape (n, len(FEATURES)), float64
        Column ``j`` is feature ``FEATURES[j]``; NaN during warm-up and on invalid rows.
    """
    o, h, lo, c, v = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, volume))
    n = c.shape[0]
    out = np.full((n, len(_NAMES)), np.nan)
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
                 & np.isfinite(v) & (o > 0) & (h > 0) & (lo > 0) & (c > 0) & (v >= 0))
    if not valid.any():
        return out
    if not valid.all():
        out[valid] = feature_matrix(o[valid], h[valid], lo[valid], c[valid], v[valid])
        return out

    def put(name: str, values: np.ndarray) -> None:
        out[:, _INDEX[name]] = values

    # Returns and realised volatility (numpy / pandas).
    for k in (1, 5, 20, 60):
        put(f"ret_{k}d", _shift_ratio(c, k))
    mom = np.full(n, np.nan)  # 12-1 momentum: close[t-21] / close[t-252] - 1
    if n > 252:
        mom[252:] = c[231:n - 21] / c[:n - 252] - 1.0
    put("mom_12_1", mom)
    logret = np.full(n, np.nan)
    logret[1:] = np.log(c[1:] / c[:-1])
    for k in (5, 20, 60):
        put(f"vol_{k}d_ann", _rolling(logret, k).std(ddof=1).to_numpy()
            * np.sqrt(TRADING_DAYS_PER_YEAR))

    # TA-Lib indicators.
    put("rsi_14", talib.RSI(c, timeperiod=14))
    _, _, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    put("macd_hist", hist / c)
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA)
    band = upper - lower
    put("bb_pctb_20", _safe_div(c - lower, band, middle))
    put("bb_width_20", _safe_div(band, middle))

    # Stochastics and Williams %R; TA-Lib returns 0 for an empty high-low range -> NaN here.
    hh, ll = talib.MAX(h, timeperiod=14), talib.MIN(lo, timeperiod=14)
    flat = ~((hh - ll) > _EPS * hh)  # also True during warm-up (NaN)
    fastk, fastd = talib.STOCHF(h, lo, c, fastk_period=14, fastd_period=3,
                               fastd_matype=talib.MA_Type.SMA)
    fastk[flat] = np.nan
    flat3 = _rolling(flat.astype(np.float64), 3).max().to_numpy() != 0.0
    fastd[flat3] = np.nan
    put("stoch_k_14", _snap(fastk, 8))
    put("stoch_d_3", _snap(fastd, 8))
    willr = talib.WILLR(h, lo, c, timeperiod=14)
    willr[flat] = np.nan
    put("willr_14", _snap(willr, 8))
    put("roc_10", talib.ROC(c, timeperiod=10))

    # Volume: OBV trend and VWAP distance (NaN where the window's volume is 0).
    obv = talib.OBV(c, v)
    obv_diff = np.full(n, np.nan)
    if n > 20:
        obv_diff[20:] = obv[20:] - obv[:-20]
    vol_sum20 = _rolling(v, 20).sum().to_numpy()
    put("obv_trend_20", _safe_div(obv_diff, vol_sum20))
    put("atr_14_pct", talib.ATR(h, lo, c, timeperiod=14) / c)
    typical = (h + lo + c) / 3.0
    vwap = _safe_div(_rolling(typical * v, 20).sum().to_numpy(), vol_sum20)
    put("dist_vwap_20", c / vwap - 1.0)

    # 52-week high and z-scores (pandas rolling).
    high_252 = _rolling(h, 252).max().to_numpy()
    put("dist_52w_high", _snap(c / high_252 - 1.0, 12))
    roll_c = _rolling(c, 20)
    mean_c = roll_c.mean().to_numpy()
    put("price_z_20", _safe_div(c - mean_c, roll_c.std(ddof=0).to_numpy(), mean_c))
    roll_v = _rolling(v, 20)
    mean_v = roll_v.mean().to_numpy()
    put("volume_z_20", _safe_div(v - mean_v, roll_v.std(ddof=0).to_numpy(), mean_v))
    return out


def compute_symbol_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Technical features of one symbol (pure; the input is not modified).

    Parameters
    ----------
    prices : pandas.DataFrame, shape (n, >=7)
        Canonical *prices* rows of a single symbol (adjusted OHLCV, see
        ``docs/architecture.md``): at least ``symbol, date, open, high, low, close, volume``.
        Rows are sorted by date here if they are not already.

    Returns
    -------
    pandas.DataFrame, shape (n, 2 + len(FEATURES))
        ``symbol, date`` then one float64 column per feature in :data:`FEATURES` order,
        sorted by date, with a ``RangeIndex``. Warm-up rows and invalid rows (missing or
        non-positive prices, missing or negative volume) are NaN.

    Raises
    ------
    DataValidationError
        If a required column is missing, the frame holds more than one symbol, or a date
        occurs twice.
    """
    check_columns(prices)
    if prices["symbol"].nunique(dropna=False) > 1:
        raise DataValidationError("compute_symbol_features expects one symbol; use "
                                  "build_features for several", column="symbol")
    frame = prices
    if not frame["date"].is_monotonic_increasing:
        frame = frame.sort_values("date", kind="stable")
    if frame["date"].duplicated().any():
        raise DataValidationError("duplicate date for one symbol", column="date")
    mat = feature_matrix(*(frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
                           for c in ("open", "high", "low", "close", "volume")))
    result = frame[["symbol", "date"]].reset_index(drop=True)
    feats = pd.DataFrame(mat, columns=list(_NAMES))
    return pd.concat([result, feats], axis=1)
