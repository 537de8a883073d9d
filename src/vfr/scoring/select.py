"""Stock selection: rank a universe on one date by classic score, optionally blended with ML.

ML is opt-in and can never break the classic path: any failure to produce ML scores (no
model, unreadable artifact, missing features, prediction error) yields the classic ranking
with ``ml_status`` saying what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from vfr.scoring.classic import blend, classic_scores, ml_components, ml_confidence, recommendation
from vfr.scoring.neutralize import risk_neutral_scores


class _Predictor(Protocol):  # structural type: anything with predict_proba(features) -> array
    def predict_proba(self, features: pd.DataFrame) -> Any: ...  # pragma: no cover


@dataclass(frozen=True)
class Selection:
    """Result of :func:`select`.

    table : ranked DataFrame, best first: ``rank``, ``symbol``, ``sector``, the group scores,
        ``classic_score``, then with ML ``ml_probability``, ``ml_confidence``, ``ml_score``;
        ``composite`` and ``recommendation``.
    date : the scoring date.
    ml_status : ``"disabled"`` (not asked for), ``"ok"``, or ``"unavailable: <reason>"``.
    model_version : version of the model used, when ML was used.
    """

    table: pd.DataFrame
    date: pd.Timestamp
    ml_status: str
    model_version: str | None = None


def select(features: pd.DataFrame, *, date: pd.Timestamp | str | None = None, universe: pd.DataFrame | None = None,
           include_ml: bool = False, model: _Predictor | None = None, model_version: str | None = None,
           ml_error: str | None = None, ml_weight: float = 0.15, symbols: list[str] | None = None,
           top: int | None = None, ml_min_confidence: float = 0.0, ml_neutralize: bool = False,
           ml_confidence_rule: str = "extremity") -> Selection:
    """Rank the stocks of one date.

    Parameters
    ----------
    features : DataFrame
        Canonical features frame; may hold many dates (only ``date`` is used).
    date : date-like, optional
        Scoring date; default the latest date in ``features``.
    universe : DataFrame, optional
        ``symbol``, ``sector`` (and ``name``) to annotate the table.
    include_ml : bool
        Blend the model's probabilities into the composite.
    model : object with ``predict_proba(features) -> array``, optional
        The loaded model; when ``include_ml`` and it is None, ``ml_error`` says why.
    model_version : str, optional
        Recorded in the result.
    ml_error : str, optional
        Why the model could not be loaded (reported in ``ml_status``).
    ml_weight : float
        ML share of the composite at full confidence (default 0.15).
    symbols : list of str, optional
        Restrict the ranking to these symbols.
    top : int, optional
        Keep the best ``top`` rows.
    ml_min_confidence : float
        Blend only predictions whose ``ml_confidence`` is at least this (0 = all); the other
        rows keep their classic score as composite. With ML the table gets ``ml_blended``.
    ml_neutralize : bool
        Replace the ML score (the probability's rank) by its residual rank after the date's
        60-day volatility, market beta and sector (:func:`vfr.scoring.risk_neutral_score`;
        sectors from ``universe``), so the ML part is a stock pick, not a volatility bet; rows
        without those exposures keep their classic score.
    ml_confidence_rule : {"extremity", "flat"}
        How the ML weight is scaled per row (:func:`vfr.scoring.classic.ml_components`):
        by ``|2 * ml_score - 1|`` (default) or not at all.

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        If ``date`` is not in ``features`` or no symbol remains.
    """
    if features.empty:
        raise ValueError("select: the features frame is empty; run `vfr features build` first")
    day = pd.Timestamp(date) if date is not None else features["date"].max()
    rows = features[features["date"] == day]
    if rows.empty:
        first, last = features["date"].min().date(), features["date"].max().date()
        raise ValueError(f"select: no features on {day.date()} (available from {first} to {last}, "
                         "trading days only)")
    day_rows = rows.reset_index(drop=True)  # the whole cross-section (the risk-neutral ML score needs it)
    if symbols:
        rows = rows[rows["symbol"].isin(symbols)]
        if rows.empty:
            raise ValueError(f"select: none of {symbols} has features on {day.date()}")
    rows = rows.reset_index(drop=True)
    table = classic_scores(rows)
    table["composite"] = table["classic_score"]
    status, version = "disabled", None
    if include_ml:
        if model is None:
            status = f"unavailable: {ml_error or 'no model given'}"
        else:
            try:
                if ml_neutralize:
                    prob_all = pd.Series(model.predict_proba(day_rows), index=day_rows.index, dtype=float)
                    neutral = _risk_neutral(day_rows, prob_all, universe).set_axis(day_rows["symbol"])
                    prob = rows["symbol"].map(prob_all.set_axis(day_rows["symbol"]))
                    score = rows["symbol"].map(neutral)
                    confidence = ml_confidence(score, ml_confidence_rule)
                else:
                    prob = pd.Series(model.predict_proba(rows), index=rows.index, dtype=float)
                    score, confidence = ml_components(prob, rows["date"], ml_confidence_rule)
                table["ml_probability"], table["ml_confidence"], table["ml_score"] = prob, confidence, score
                blended = confidence >= ml_min_confidence
                table["composite"] = blend(table["classic_score"], score.where(blended), confidence, ml_weight)
                table["ml_blended"] = blended
                status, version = "ok", model_version
            except Exception as exc:  # the classic answer must still come
                status = f"unavailable: prediction failed ({exc.__class__.__name__}: {exc})"
    table["recommendation"] = recommendation(table["composite"])
    if universe is not None:
        table = table.merge(universe[["symbol", "sector"]], on="symbol", how="left")
    else:
        table["sector"] = None
    table = table.sort_values(["composite", "symbol"], ascending=[False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    front, back = ["rank", "symbol", "sector"], ["composite", "recommendation"]
    table = table[front + [c for c in table.columns if c not in front + back + ["date"]] + back]
    if top is not None:
        table = table.head(top)
    return Selection(table=table, date=day, ml_status=status, model_version=version)


def _risk_neutral(rows: pd.DataFrame, prob: pd.Series, universe: pd.DataFrame | None) -> pd.Series:
    """The ML probability's residual rank after the rows' risk exposures and sector."""
    return risk_neutral_scores(rows[["date", "symbol"]].assign(prob=prob), rows, universe, score="prob")
