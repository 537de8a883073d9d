"""``build_all_features``: the technical frame joined with every available feature group."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from vfr.data.fundamentals import MacroData
from vfr.data.universe import membership_mask
from vfr.errors import DataValidationError
from vfr.features.alternative import alternative_features
from vfr.features.catalogue import ALL_FEATURES, RATIO_FEATURES_DEFS
from vfr.features.cross_section import build_features, member_rank_groups, rank_matrix
from vfr.features.definitions import SENTIMENT_FEATURES
from vfr.features.fundamental import fundamental_features
from vfr.features.interactions import interaction_features
from vfr.features.macro import macro_features
from vfr.features.sentiment import market_sentiment

_RANKED = {f.name: f.ranked for f in (*ALL_FEATURES, *RATIO_FEATURES_DEFS, *SENTIMENT_FEATURES)}


def _append(result: pd.DataFrame, part: pd.DataFrame, codes: np.ndarray) -> list[str]:
    """Append ``part``'s feature columns and the ranks of the ranked ones to ``result``."""
    names = [c for c in part.columns if c not in ("symbol", "date")]
    for c in names:
        result[c] = part[c].to_numpy(np.float32)
    ranked = [c for c in names if _RANKED.get(c, True)]
    if ranked:
        values = np.column_stack([part[c].to_numpy(np.float32) for c in ranked])
        ranks = rank_matrix(values, codes)
        for j, c in enumerate(ranked):
            result[f"{c}_rank"] = ranks[:, j]
    return names


def _check_aligned(group: str, part: pd.DataFrame, tech: pd.DataFrame) -> None:
    """Raise unless ``part`` has ``tech``'s (symbol, date) rows in ``tech``'s order."""
    if not (np.array_equal(part["date"].to_numpy(), tech["date"].to_numpy())
            and np.array_equal(part["symbol"].astype(object).to_numpy(),
                               tech["symbol"].astype(object).to_numpy())):
        raise DataValidationError(f"{group} features are not aligned with the technical frame",
                                  column="date")


def build_all_features(prices: pd.DataFrame, *, earnings: pd.DataFrame | None = None,
                       macro: MacroData | None = None, universe: pd.DataFrame | None = None,
                       ratios: pd.DataFrame | None = None,
                       eps_split_factors: Mapping[str, float] | None = None,
                       progress: Callable[[int], object] | None = None,
                       membership: pd.DataFrame | None = None, alpha158: bool = False) -> pd.DataFrame:
    """Every available feature group of every price row, point in time.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (``symbol, date``, adjusted OHLCV, ``close_raw``,
        ``split_coefficient``, ``dividend_amount``).
    earnings : pandas.DataFrame, optional
        Canonical earnings frame (:func:`vfr.data.read_earnings`): enables the fundamental
        group and the earnings-calendar features.
    macro : MacroData, optional
        FRED-MD, VIX and GDP (:func:`vfr.data.read_macro`): enables the macro group.
    universe : pandas.DataFrame, optional
        ``symbol, sector`` (:func:`vfr.data.read_universe`): enables sector-relative strength.
    ratios : pandas.DataFrame, optional
        Provider balance-sheet ratios (see :func:`vfr.features.fundamental.fundamental_features`).
    eps_split_factors : mapping, optional
        The split table (symbol -> product of the splits applied to the EPS file after the
        last price date): only with it are the level ratios ``eps_ttm``, ``pe_ttm`` and
        ``earnings_yield`` built (see :mod:`vfr.features.fundamental`, "What P/E means here").
    progress : callable, optional
        Passed to :func:`vfr.features.build_features` (called once per symbol).
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`). Every feature is still
        computed from each stock's whole history, but cross-sectional ranks (and the
        interactions built on them), the market return of ``beta_mkt_252d`` and the sector
        indices of ``sector_rel_*`` are taken over the date's members only, and only the rows
        of members are returned. ``None``: a static universe (every row).
    alpha158 : bool
        Also build the opt-in group ``alpha158``: Qlib's Alpha158 factors
        (:func:`vfr.features.alpha158.alpha158`; 157 float32 columns named as in Qlib, e.g.
        ``KMID``, ``ROC5``, ``CORD60``, plus ``VWAP0`` when ``prices`` has a ``vwap`` column).
        Each stock's own time series, so not ranked and unaffected by ``membership`` except that
        only members' rows are returned. Off by default (about 1.4 GB of float32 on the full
        development set).

    Returns
    -------
    pandas.DataFrame
        The columns of ``build_features(prices)`` unchanged, then per available group
        (fundamental, macro, alternative, interaction) its float32 feature columns and
        ``<name>_rank`` for stock-level features only (market-wide macro and calendar values
        are not ranked; see each :class:`~vfr.features.FeatureDef`'s ``ranked``). Interactions
        are products of centred ranks (:mod:`vfr.features.interactions`); the ``alpha158``
        columns (only with ``alpha158=True``) come last, unranked. ``attrs
        ["groups_present"]`` lists the groups with columns. Alternative features are always
        present (calendar effects need only dates); fundamental needs ``earnings``, macro
        needs ``macro``.
    """
    tech = build_features(prices, progress=progress, membership=membership)
    members = None if membership is None else membership_mask(tech["symbol"].to_numpy(), tech["date"].to_numpy(),
                                                              membership)
    codes = member_rank_groups(tech["date"].to_numpy(), members)
    result = tech
    parts: dict[str, pd.DataFrame] = {}
    if earnings is not None:
        parts["fundamental"] = fundamental_features(prices, earnings, ratios=ratios,
                                                    eps_split_factors=eps_split_factors)
    if macro is not None:
        parts["macro"] = macro_features(prices, macro, membership=membership)
    parts["alternative"] = alternative_features(prices, earnings, universe, membership=membership)
    parts["sentiment"] = market_sentiment(prices, earnings=earnings, vix=macro.vix if macro is not None else None)
    extra: dict[str, pd.Series] = {}
    groups = ["technical"]
    for group, part in parts.items():
        _check_aligned(group, part, tech)
        frame = pd.DataFrame(index=tech.index)
        _append(frame, part, codes)
        extra.update({c: frame[c] for c in frame.columns})
        groups.append(group)
    result = pd.concat([tech, pd.DataFrame(extra, index=tech.index)], axis=1)
    ix = interaction_features(result)
    if ix.shape[1] > 2:
        frame = pd.DataFrame(index=tech.index)
        _append(frame, ix, codes)
        result = pd.concat([result, frame], axis=1)
        groups.append("interaction")
    if members is not None:  # result rows are tech's rows, in tech's order
        result = result.loc[members].reset_index(drop=True)
    if alpha158:  # opt-in; per-stock time series in Qlib's scale-free form: no ranks
        from vfr.features.alpha158 import alpha158 as alpha158_features  # scipy.ndimage: import on use

        part = alpha158_features(prices)
        _check_aligned("alpha158", part, tech)
        values = part.iloc[:, 2:]  # every column but symbol, date
        if members is not None:
            values = values.loc[members]
        result = pd.concat([result, values.set_axis(result.index)], axis=1)
        groups.append("alpha158")
    result.attrs["groups_present"] = groups
    return result
