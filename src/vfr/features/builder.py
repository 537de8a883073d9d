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
from vfr.features.cross_section import member_rank_groups, rank_matrix, technical_values
from vfr.features.definitions import FEATURES, SENTIMENT_FEATURES
from vfr.features.fundamental import fundamental_features
from vfr.features.interactions import interaction_inputs, interaction_values
from vfr.features.macro import macro_features
from vfr.features.sentiment import market_sentiment

_RANKED = {f.name: f.ranked for f in (*ALL_FEATURES, *RATIO_FEATURES_DEFS, *SENTIMENT_FEATURES)}


def _check_aligned(group: str, part: pd.DataFrame, keys: pd.DataFrame) -> None:
    """Raise unless ``part`` has ``keys``' (symbol, date) rows in ``keys``' order."""
    if not (len(part) == len(keys) and np.array_equal(part["date"].to_numpy(), keys["date"].to_numpy())
            and part["symbol"].reset_index(drop=True).equals(keys["symbol"].reset_index(drop=True))):
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
    keys, tech = technical_values(prices, progress)
    dates = keys["date"].to_numpy()
    members = None if membership is None else membership_mask(keys["symbol"].to_numpy(), dates, membership)
    keep = None if members is None else np.flatnonzero(members)
    parts: dict[str, pd.DataFrame] = {}
    if earnings is not None:
        parts["fundamental"] = fundamental_features(prices, earnings, ratios=ratios,
                                                    eps_split_factors=eps_split_factors)
    if macro is not None:
        parts["macro"] = macro_features(prices, macro, membership=membership)
    parts["alternative"] = alternative_features(prices, earnings, universe, membership=membership)
    parts["sentiment"] = market_sentiment(prices, earnings=earnings, vix=macro.vix if macro is not None else None)
    for group, part in parts.items():
        _check_aligned(group, part, keys)

    # the layout of the one float32 block: per group its features, then the ranks of the ranked ones
    tech_names = [f.name for f in FEATURES]
    layout: list[tuple[str, list[str], list[str]]] = [("technical", tech_names, tech_names)]
    for group, part in parts.items():
        names = [c for c in part.columns if c not in ("symbol", "date")]
        layout.append((group, names, [c for c in names if _RANKED.get(c, True)]))
    ranked = {f"{c}_rank" for _, _, r in layout for c in r}
    ix_names = [name for name, pair in interaction_inputs().items() if set(pair) <= ranked]
    if ix_names:
        layout.append(("interaction", ix_names, ix_names))
    columns = [c for _, names, r in layout for c in (*names, *(f"{x}_rank" for x in r))]
    if alpha158:  # opt-in; per-stock time series in Qlib's scale-free form: no ranks
        from vfr.features.alpha158 import alpha158_names, alpha158_values  # scipy.ndimage: import on use
    a158 = alpha158_names(vwap="vwap" in prices.columns) if alpha158 else []
    n = len(keys) if keep is None else len(keep)
    block = np.empty((n, len(columns) + len(a158)), dtype=np.float32, order="F")
    where = {c: j for j, c in enumerate(columns)}
    codes = member_rank_groups(dates if keep is None else dates[keep], None)  # members only: a date's code

    def fill(name: str, values: np.ndarray) -> None:
        block[:, where[name]] = values if keep is None else values[keep]

    for group, names, to_rank in layout:
        if group == "technical":
            for j, c in enumerate(names):
                fill(c, tech[:, j])
            del tech
        elif group == "interaction":
            inputs = {c: block[:, where[c]] for pair in interaction_inputs(names).values() for c in pair}
            for c, values in interaction_values(inputs, names).items():
                block[:, where[c]] = values
        else:
            part = parts.pop(group)
            for c in names:
                fill(c, part[c].to_numpy(np.float32))
            del part
        if to_rank:
            first, first_rank = where[to_rank[0]], where[f"{to_rank[0]}_rank"]
            if [where[c] for c in to_rank] == list(range(first, first + len(to_rank))):
                values = block[:, first:first + len(to_rank)]  # a view: no copy
            else:
                values = np.column_stack([block[:, where[c]] for c in to_rank])
            rank_matrix(values, codes, out=block[:, first_rank:first_rank + len(to_rank)])
    if alpha158:
        alpha158_values(prices, rows=members, out=block[:, len(columns):])
    result = pd.DataFrame(block, columns=[*columns, *a158], copy=False)
    result.insert(0, "date", dates if keep is None else dates[keep])
    result.insert(0, "symbol", keys["symbol"].array if keep is None else keys["symbol"].array.take(keep))
    result.attrs["groups_present"] = [g for g, _, _ in layout] + (["alpha158"] if alpha158 else [])
    return result
