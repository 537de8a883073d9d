"""Interaction features: products of centred cross-sectional ranks (pure).

An interaction of features ``a`` and ``b`` on date ``t`` is
``ix = 4 (rank_a - 0.5)(rank_b - 0.5)`` in [-1, 1], with ``rank_*`` the cross-sectional
percentile ranks of that date. Products of ranks rather than of raw values make the terms
unit-free and robust to outliers (a SUE of 40 does not dominate); the value is positive when
both inputs sit on the same side of the day's median. Each input is point-in-time, so is the
product.

The plan lists twelve candidates (:data:`CANDIDATES`); :data:`INTERACTIONS` keeps those that
earned their place: a mean daily Rank IC against the 21-day forward excess return with
``|IC| >= 0.005`` and ``|t| >= 2`` on the development set's 2000-2014 Fridays (selection on
the earlier part, so the later years stay an honest test; :data:`MEASURED_IC`, measured by
``benchmarks/feature_catalogue.py --interaction-ic``). Sentiment x RSI belongs to the
sentiment work and is not here. Value x momentum now takes the basis-safe ``ey_rel_3y``
(``ix_eyrel_mom``); the level-E/P version ``ix_ey_mom`` and its IC are kept on record in
:data:`RETIRED_IC` (issue 12: its E/P depended on each stock's EPS split basis).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: name -> (feature a, feature b, rationale). All twelve candidates of the plan.
CANDIDATES: dict[str, tuple[str, str, str]] = {
    "ix_sue_mom": ("sue", "ret_60d", ("earnings surprise x momentum: drift is stronger when "
                   "price agrees (Chan, Jegadeesh & Lakonishok 1996)")),
    "ix_surprise_volume": ("surprise_pct_last", "volume_z_20", ("surprise x abnormal volume: "
                           "high-volume surprises drift more (Garfinkel & Sokobin 2006)")),
    "ix_vol_volume": ("vol_20d_ann", "volume_z_20", ("volatility x volume: disagreement / "
                      "information arrival")),
    "ix_eyrel_mom": ("ey_rel_3y", "ret_60d", ("value (E/P against the stock's own 3 years, "
                     "basis-safe) x momentum (Asness 1997)")),
    "ix_dte_surprise": ("days_to_next_earnings", "surprise_pct_mean_4q", ("days to earnings x "
                        "past surprise: habitual beaters ahead of the report")),
    "ix_sue_recency": ("sue", "days_since_last_earnings", ("SUE x time since the report: "
                       "post-announcement drift decays (Bernard & Thomas 1989)")),
    "ix_rsi_volume": ("rsi_14", "volume_z_20", ("RSI x volume: reversal on heavy volume "
                      "(Campbell, Grossman & Wang 1993)")),
    "ix_mom_vol": ("ret_60d", "vol_60d_ann", "momentum x volatility"),
    "ix_growth_mom": ("eps_growth_yoy", "ret_60d", "earnings growth x momentum"),
    "ix_sector_mom": ("sector_rel_60d", "ret_20d", ("sector-relative strength x short-term "
                      "momentum")),
    "ix_dy_vol": ("dividend_yield_ttm", "vol_60d_ann", ("dividend yield x volatility "
                  "(defensive income)")),
    "ix_beta_sue": ("beta_mkt_252d", "sue", "market beta x earnings surprise"),
}

#: Interactions kept (see the module docstring for the rule and docs/features.md for the ICs).
INTERACTIONS: tuple[str, ...] = ("ix_dte_surprise", "ix_rsi_volume", "ix_mom_vol",
                                  "ix_growth_mom", "ix_sector_mom")

#: Mean daily Rank IC (21-day forward excess return, Fridays 2000-2014, 501 stocks) and its
#: t-statistic, measured on the development set on 2026-11-21 and, for ``ix_eyrel_mom`` and
#: ``ix_growth_mom`` (whose inputs changed with issue 12), on 2026-11-30; the basis of
#: :data:`INTERACTIONS`.
MEASURED_IC: dict[str, tuple[float, float]] = {
    "ix_sue_mom": (0.0041, 1.63), "ix_surprise_volume": (-0.0010, -0.49),
    "ix_vol_volume": (0.0021, 1.06), "ix_eyrel_mom": (-0.0010, -0.40),
    "ix_dte_surprise": (-0.0089, -4.15), "ix_sue_recency": (0.0005, 0.21),
    "ix_rsi_volume": (-0.0061, -2.91), "ix_mom_vol": (0.0109, 3.76),
    "ix_growth_mom": (0.0090, 3.62), "ix_sector_mom": (0.0058, 2.30),
    "ix_dy_vol": (-0.0047, -1.33), "ix_beta_sue": (0.0048, 1.75),
}

#: Retired candidates: name -> (feature a, feature b, IC, t, why), measured as above on
#: 2026-11-21. ``ix_ey_mom`` used the level E/P ``earnings_yield``, whose per-stock EPS basis
#: (splits after the last price date applied to the EPS file) leaked the future; its IC does
#: not survive with the basis-safe ``ey_rel_3y`` (``ix_eyrel_mom``, not kept).
RETIRED_IC: dict[str, tuple[str, str, float, float, str]] = {
    "ix_ey_mom": ("earnings_yield", "ret_60d", -0.0113, -4.47,
                  "level E/P, leaked the EPS file's later split basis (issue 12)"),
}


def interaction_features(features: pd.DataFrame,
                         names: tuple[str, ...] | list[str] | None = None) -> pd.DataFrame:
    """Interaction columns of a joined features frame.

    Parameters
    ----------
    features : pandas.DataFrame
        ``symbol, date`` and the ``<feature>_rank`` columns of the inputs (percentile ranks in
        (0, 1] per date, as produced by :func:`vfr.features.build_all_features`).
    names : sequence of str, optional
        Interactions to compute (keys of :data:`CANDIDATES`); default :data:`INTERACTIONS`.
        Those whose inputs are absent are skipped.

    Returns
    -------
    pandas.DataFrame
        ``symbol, date`` and one float32 column per computed interaction, aligned with
        ``features`` row by row; NaN where an input rank is NaN.
    """
    out = features[["symbol", "date"]].copy()
    ranks = {c: features[c].to_numpy(np.float32) for pair in interaction_inputs(names).values()
             for c in pair if c in features.columns}
    for name, values in interaction_values(ranks, names).items():
        out[name] = values
    return out


def interaction_inputs(names: tuple[str, ...] | list[str] | None = None) -> dict[str, tuple[str, str]]:
    """Interaction -> the two ``<feature>_rank`` columns it multiplies (default :data:`INTERACTIONS`)."""
    names = INTERACTIONS if names is None else tuple(names)
    return {name: (f"{CANDIDATES[name][0]}_rank", f"{CANDIDATES[name][1]}_rank") for name in names}


def interaction_values(ranks: Mapping[str, np.ndarray],
                       names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """The interaction arrays of the given rank arrays (the formula of the module docstring).

    Parameters
    ----------
    ranks : mapping of str to ndarray of shape (n,)
        ``<feature>_rank`` -> percentile ranks in (0, 1] per date, all of one length.
    names : sequence of str, optional
        As :func:`interaction_features`; those whose inputs are absent from ``ranks`` are skipped.

    Returns
    -------
    dict of str to ndarray of float32, shape (n,)
        In the order of ``names``; NaN where an input rank is NaN.
    """
    out = {}
    for name, (ra, rb) in interaction_inputs(names).items():
        if ra not in ranks or rb not in ranks:
            continue
        x = np.asarray(ranks[ra], dtype=np.float32) - np.float32(0.5)
        y = np.asarray(ranks[rb], dtype=np.float32) - np.float32(0.5)
        out[name] = (np.float32(4.0) * x * y).astype(np.float32)
    return out
