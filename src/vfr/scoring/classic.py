"""Classic factor scores, the ML blend and recommendations (pure functions).

Scores live on [0, 1] and are cross-sectional: 1 is the best stock of the universe on that
date. A factor group's score is the weighted mean of its signals' percentile ranks (signals
where lower is better enter as ``1 - rank``). The classic score is the weighted mean of the
groups present, with the plan's weights renormalised over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Weights of the five factor groups in the classic composite (the product plan).
GROUP_WEIGHTS: dict[str, float] = {
    "technical": 0.40,
    "fundamental": 0.25,
    "macro": 0.20,
    "sentiment": 0.10,
    "alternative": 0.05,
}


@dataclass(frozen=True)
class Signal:
    """One input of a factor group's score.

    feature : column of the features frame (its ``<feature>_rank`` column is used).
    direction : +1 if a higher value is better, -1 if lower is better.
    weight : relative weight inside the group.
    rationale : the finding it rests on.
    """

    feature: str
    direction: int
    weight: float
    rationale: str


#: Signals of the technical factor group. Chosen by the research protocol (docs/research.md):
#: signals whose sign the literature and the 2002-2014 walk-forward evidence agree on, equal
#: weights. The seed's momentum-style signals (ret_60d, ret_20d as momentum, dist_52w_high,
#: macd_hist) had negative 1-week Rank IC on 2002-2014 (short-term reversal dominates in large
#: caps at 1-4 weeks); they are in :data:`SEED_GROUP_SIGNALS` for comparison.
TECHNICAL_SIGNALS: tuple[Signal, ...] = (
    Signal("ret_20d", -1, 1.0, "one-month reversal: last month's losers beat its winners (Jegadeesh, 1990; "
           "Lehmann, 1990)"),
    Signal("rsi_14", -1, 1.0, "short-term reversal: oversold beats overbought (Jegadeesh, 1990)"),
    Signal("bb_pctb_20", -1, 1.0, "position in the Bollinger band: reversal (Bollinger)"),
    Signal("mom_12_1", +1, 1.0, "12-1 momentum, the latest month skipped (Jegadeesh & Titman, 1993; "
           "Carhart, 1997)"),
    Signal("volume_z_20", +1, 1.0, "abnormal volume precedes returns (Gervais, Kaniel & Mingelgrin, 2001)"),
)

#: Signals per factor group; later issues add the other groups here.
GROUP_SIGNALS: dict[str, tuple[Signal, ...]] = {"technical": TECHNICAL_SIGNALS}

#: Signals of the fundamental factor group (issue 3; features of vfr.features.fundamental).
FUNDAMENTAL_SIGNALS: tuple[Signal, ...] = (
    Signal("ey_rel_3y", +1, 0.25, "value: high E/P beats low E/P (Basu, 1977; Fama & French, 1992), "
           "measured against the stock's own 3 years (time-series value; Asness, Moskowitz & Pedersen, "
           "2013) so that no per-stock EPS share basis (later splits in the EPS file) can leak; E/P rather "
           "than P/E so losses stay defined"),
    Signal("sue", +1, 0.25, "post-earnings-announcement drift (Bernard & Thomas, 1989)"),
    Signal("surprise_pct_mean_4q", +1, 0.10, "persistent analyst surprises (Livnat & Mendenhall, 2006)"),
    Signal("surprise_beat_share_8q", +1, 0.10, "consistent beaters keep beating (Kasznik & McNichols, 2002)"),
    Signal("eps_growth_yoy", +1, 0.15, "earnings momentum (Chan, Jegadeesh & Lakonishok, 1996)"),
    Signal("dividend_yield_ttm", +1, 0.15, "dividend yield / shareholder yield premium (Litzenberger & "
           "Ramaswamy, 1979; Boudoukh et al., 2007)"),
)

#: Signals of the macro group: a stock-level exposure to the market factor (market-wide values are
#: equal for all stocks on a date, so their ranks carry nothing; see vfr.features.macro). The
#: seed's regime tilts (beta_regime_tilt, rate_regime_tilt) had negative 1-week Rank IC on
#: 2002-2014 (docs/research.md); they are in :data:`SEED_GROUP_SIGNALS`.
MACRO_SIGNALS: tuple[Signal, ...] = (
    Signal("beta_mkt_252d", -1, 1.0, "betting against beta: low-beta stocks earn more per unit of risk "
           "(Black, Jensen & Scholes, 1972; Frazzini & Pedersen, 2014)"),
)

#: Signals of the alternative group (issue 3; features of vfr.features.alternative).
ALTERNATIVE_SIGNALS: tuple[Signal, ...] = (
    Signal("days_to_next_earnings", -1, 0.5, "earnings announcement premium: stocks earn more in the weeks "
           "before a scheduled report (Frazzini & Lamont, 2007)"),
    Signal("sector_rel_20d", -1, 0.5, "within-industry short-term reversal (Da, Liu & Schaumburg, 2014)"),
)

#: Signals of the sentiment factor group: market-derived sentiment, available for every stock
#: (vfr.features.sentiment.market_sentiment); text sentiment carried no signal on the tweets tested.
SENTIMENT_SIGNALS: tuple[Signal, ...] = (
    Signal("msent_earnings_surprise", +1, 0.4, "post-earnings-announcement drift (Bernard & Thomas, 1989)"),
    Signal("msent_reversal_5d", +1, 0.3, "short-term reversal: last week's losers rebound (Lehmann, 1990)"),
    Signal("msent_abnormal_volume", +1, 0.3, "high-volume return premium / attention (Gervais, Kaniel & "
           "Mingelgrin, 2001)"),
)

GROUP_SIGNALS.update({"fundamental": FUNDAMENTAL_SIGNALS, "macro": MACRO_SIGNALS,
                      "sentiment": SENTIMENT_SIGNALS, "alternative": ALTERNATIVE_SIGNALS})

#: The seed's signals of the groups the protocol changed (technical, macro), with the other
#: groups as in :data:`GROUP_SIGNALS`: the "before" of docs/research.md, for comparison only.
SEED_GROUP_SIGNALS: dict[str, tuple[Signal, ...]] = GROUP_SIGNALS | {
    "technical": (
        Signal("ret_60d", +1, 0.20, "intermediate-horizon momentum (Jegadeesh & Titman, 1993)"),
        Signal("ret_20d", +1, 0.10, "one-month momentum"),
        Signal("dist_52w_high", +1, 0.20, "nearness to the 52-week high (George & Hwang, 2004)"),
        Signal("macd_hist", +1, 0.10, "MACD histogram above zero: trend acceleration (Appel)"),
        Signal("rsi_14", -1, 0.10, "short-term reversal: oversold beats overbought (Jegadeesh, 1990)"),
        Signal("bb_pctb_20", -1, 0.05, "position in the Bollinger band: reversal (Bollinger)"),
        Signal("vol_60d_ann", -1, 0.15, "low-volatility anomaly (Ang, Hodrick, Xing & Zhang, 2006)"),
        Signal("volume_z_20", +1, 0.10, "abnormal volume precedes returns (Gervais, Kaniel & Mingelgrin, 2001)"),
    ),
    "macro": (
        Signal("beta_regime_tilt", +1, 0.5, "high beta in calm markets, low beta when VIX is in the top "
               "quintile of its year (Frazzini & Pedersen, 2014)"),
        Signal("rate_regime_tilt", +1, 0.5, "positive 10-year-yield beta while yields rise, negative while "
               "they fall (Sweeney & Warga, 1986)"),
    ),
}

#: Composite thresholds -> recommendation (lower bound inclusive), highest first.
RECOMMENDATIONS: tuple[tuple[float, str], ...] = (
    (0.80, "STRONG_BUY"), (0.60, "BUY"), (0.40, "HOLD"), (0.20, "SELL"), (0.0, "STRONG_SELL"),
)


def group_score(features: pd.DataFrame, signals: tuple[Signal, ...]) -> pd.Series:
    """Weighted mean of signed percentile ranks, renormalised over the signals present.

    Parameters
    ----------
    features : DataFrame of shape (n_rows, ...)
        Must hold ``<feature>_rank`` columns (cross-sectional percentile ranks in (0, 1]).
    signals : tuple of Signal

    Returns
    -------
    Series of shape (n_rows,), values in [0, 1]; NaN where no signal is known.

    Raises
    ------
    KeyError
        If none of the signals' rank columns exist.
    """
    num = pd.Series(0.0, index=features.index)
    den = pd.Series(0.0, index=features.index)
    used = 0
    for s in signals:
        col = f"{s.feature}_rank"
        if col not in features.columns:
            continue
        used += 1
        rank = features[col].astype(float)
        value = rank if s.direction > 0 else 1.0 - rank
        known = value.notna()
        num = num + value.fillna(0.0) * s.weight
        den = den + known * s.weight
    if used == 0:
        raise KeyError(f"none of the rank columns {[f'{s.feature}_rank' for s in signals]} are in the features")
    return (num / den.where(den > 0)).rename("score")


def classic_scores(features: pd.DataFrame, group_weights: dict[str, float] | None = None,
                   signals: dict[str, tuple[Signal, ...]] | None = None) -> pd.DataFrame:
    """Classic score of every row: factor-group scores and their renormalised weighted mean.

    Parameters
    ----------
    features : DataFrame
        Canonical features frame (``symbol``, ``date``, features and ``*_rank`` columns).
    group_weights : dict, optional
        Default :data:`GROUP_WEIGHTS`. Groups without signals in the frame are left out and
        the weights of the others are rescaled to sum to 1.
    signals : dict, optional
        Signals per group; default :data:`GROUP_SIGNALS` (research compares
        :data:`SEED_GROUP_SIGNALS`).

    Returns
    -------
    DataFrame with ``symbol``, ``date``, one ``<group>_score`` column per group present and
    ``classic_score``, all on [0, 1], and ``groups_present``: the groups whose score is known
    on that row, comma-separated in :data:`GROUP_WEIGHTS` order (the classic score's weights
    were renormalised over exactly these). ``attrs["groups_present"]`` lists the groups with
    signals in the frame at all.
    """
    weights = GROUP_WEIGHTS if group_weights is None else group_weights
    signals = GROUP_SIGNALS if signals is None else signals
    out = features[["symbol", "date"]].copy()
    num = pd.Series(0.0, index=features.index)
    den = pd.Series(0.0, index=features.index)
    for group, group_signals in signals.items():
        try:
            score = group_score(features, group_signals)
        except KeyError:
            continue
        out[f"{group}_score"] = score
        w = weights.get(group, 0.0)
        num = num + score.fillna(0.0) * w
        den = den + score.notna() * w
    out["classic_score"] = num / den.where(den > 0)
    present = [g for g in signals if f"{g}_score" in out.columns]
    if present:
        known = np.column_stack([out[f"{g}_score"].notna().to_numpy() for g in present])
        mask = known.astype(np.int64) @ (np.int64(1) << np.arange(len(present), dtype=np.int64))
        names = {int(m): ",".join(g for j, g in enumerate(present) if m >> j & 1)
                 for m in np.unique(mask)}
        out["groups_present"] = pd.Series(mask, index=out.index).map(names).astype(object)
    else:
        out["groups_present"] = ""
    out.attrs["groups_present"] = present
    return out


#: Confidence rules of the ML-enhanced composite (:func:`ml_components`).
CONFIDENCE_RULES = ("extremity", "flat")


def ml_components(prob: pd.Series, dates: pd.Series, rule: str = "extremity") -> tuple[pd.Series, pd.Series]:
    """ML score and confidence from predicted probabilities.

    ``ml_score`` is the cross-sectional percentile rank of the probability on its date (so it
    is on the same [0, 1] scale as the classic scores). ``ml_confidence`` follows ``rule``:
    ``"extremity"`` (the product's) is ``|2 * ml_score - 1|``, 1 for the model's most extreme
    calls and 0 at the median; ``"flat"`` is 1 wherever there is an ML score.

    Raises
    ------
    ValueError
        ``rule`` is not one of :data:`CONFIDENCE_RULES`.
    """
    score = prob.groupby(dates).rank(pct=True)
    return score, ml_confidence(score, rule)


def ml_confidence(ml_score: pd.Series, rule: str = "extremity") -> pd.Series:
    """Confidence of ML scores on [0, 1] under ``rule`` (see :func:`ml_components`); NaN where
    the score is NaN.

    Raises
    ------
    ValueError
        ``rule`` is not one of :data:`CONFIDENCE_RULES`.
    """
    if rule not in CONFIDENCE_RULES:
        raise ValueError(f"confidence rule must be one of {', '.join(CONFIDENCE_RULES)}, got {rule!r}")
    if rule == "flat":
        return pd.Series(1.0, index=ml_score.index).where(ml_score.notna())
    return (2.0 * ml_score - 1.0).abs()


def blend(classic: pd.Series, ml_score: pd.Series, ml_confidence: pd.Series, ml_weight: float = 0.15) -> pd.Series:
    """Composite = (1 - w) * classic + w * ml_score with w = ``ml_weight`` * confidence.

    At full confidence the split is 85% classic / 15% ML (``ml_weight`` = 0.15); a row without
    an ML score keeps its classic score unchanged.
    """
    w = (ml_weight * ml_confidence).where(ml_score.notna(), 0.0).fillna(0.0)
    return (1.0 - w) * classic + w * ml_score.fillna(0.0)


def recommendation(score: pd.Series) -> pd.Series:
    """Map composite scores on [0, 1] to STRONG_BUY / BUY / HOLD / SELL / STRONG_SELL (NaN -> None)."""
    bins = [t for t, _ in reversed(RECOMMENDATIONS)] + [np.inf]
    labels = [name for _, name in reversed(RECOMMENDATIONS)]
    out = pd.cut(score, bins=bins, labels=labels, right=False, include_lowest=True)
    return out.astype(object).where(score.notna(), None)
