"""The selection stage (``vfr select``), kept apart from :mod:`vfr.pipeline` so that it starts
fast: it imports the store, the scores and, only on a cache miss, the model registry.

With ``include_ml`` the champion's probabilities of the day come from
:class:`vfr.ml.scorecache.ScoreCache` when the champion pointer is fresh and the day's feature
rows are the ones scored before; otherwise the registry loads the model (MLflow and the model's
library), scores the whole cross-section once and stores it for the next call.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.errors import StageError, UsageError
from vfr.ml.scorecache import CachedScores, ScoreCache, features_fingerprint, read_champion_pointer
from vfr.scoring import Selection, select

if TYPE_CHECKING:  # the optimiser is imported where it is used: a plain `vfr select` starts fast
    from vfr.backtest import BacktestConfig

__all__ = ["champion_scores", "require_features", "stage_select", "target_weights", "warm_champion_scores"]


def require_features(store: MarketStore, stage: str) -> None:
    """Raise :class:`StageError` naming the first missing step when the store lacks prices or features."""
    counts = store.table_counts([tables.PRICES, tables.FEATURES])  # not every table: a COUNT(*) each
    if not counts.get(tables.PRICES):
        raise StageError(f"{stage}: the store has no prices; run `vfr data ingest` first")
    if not counts.get(tables.FEATURES):
        raise StageError(f"{stage}: the store has no features; run `vfr features build` first")


def champion_scores(settings: Settings, day_rows: pd.DataFrame, day: pd.Timestamp,
                    model_version: str | None = None) -> tuple[Any, str | None, str | None]:
    """A predictor of the day's cross-section for :func:`vfr.scoring.select`.

    Parameters
    ----------
    settings : Settings
        ``model_name``, the tracking URI and ``VFR_HOME`` (the cache's folder).
    day_rows : DataFrame
        Every feature row of ``day`` (the whole cross-section, as stored).
    day : Timestamp
    model_version : str, optional
        A registered version; default the champion.

    Returns
    -------
    tuple
        ``(predictor, version, error)``: a :class:`vfr.ml.scorecache.CachedScores` and its
        version, or ``(None, None, reason)`` when the registry has no usable model (the caller
        falls back to the classic score).
    """
    cache = ScoreCache.from_settings(settings)
    name = settings.model_name
    fingerprint = features_fingerprint(day_rows)
    # the champion named by a fresh pointer; an explicit version always asks the registry (its digest)
    pointer = read_champion_pointer(settings.resolved_tracking_uri, name) if model_version is None else None
    if pointer is not None:
        hit = cache.read(name, pointer[0], pointer[1], day, fingerprint)
        if hit is not None:
            return hit, hit.version, None
    from vfr.ml.registry import ModelRegistry, RegistryError

    try:
        loaded = ModelRegistry.from_settings(settings).load(name, model_version)
    except RegistryError as exc:
        return None, None, str(exc)
    try:
        probs = loaded.predict_proba(day_rows)
    except Exception:  # select scores it again, reports the failure and falls back to classic
        return loaded, loaded.version, None
    digest = str(loaded.metadata.get("sha256", ""))
    try:
        cache.write(name, loaded.version, digest, day, fingerprint, day_rows["symbol"], probs)
    except (OSError, ValueError):  # not finite: select scores it again and reports the failure
        return loaded, loaded.version, None
    return CachedScores(pd.Series(probs, index=day_rows["symbol"].to_numpy(), dtype="float64"),
                        loaded.version), loaded.version, None


def target_weights(closes: pd.DataFrame, score: pd.Series, day: pd.Timestamp, config: BacktestConfig,
                   holdings: pd.Series | None = None) -> pd.Series:
    """The optimised book's target weights for ``day`` (:func:`vfr.backtest.optimized_weights`).

    Parameters
    ----------
    closes : DataFrame
        Adjusted closes, index trading dates up to ``day``, one column per symbol (at least
        ``config.cov_lookback + 1`` dates for full estimates; fewer names qualify otherwise).
    score : Series
        The day's score per symbol (index symbol; higher = better; NaN = not scored).
    day : Timestamp
    config : BacktestConfig
        An optimised book (``weighting="optimized"``): its risk aversion, turnover penalty and
        costs, ``max_weight``.
    holdings : Series, optional
        Weights held now per symbol (fractions of capital); the turnover penalty is charged
        against them. Default: none (a new book).

    Returns
    -------
    Series
        Target weight per symbol of ``score`` (0 for names without a close on ``day`` or too
        short a history), summing to ``config.gross_exposure``.
    """
    from vfr.backtest import optimized_weights

    closes = closes.loc[:day]
    returns = closes.pct_change(fill_method=None).iloc[1:].tail(config.cov_lookback).reindex(columns=score.index)
    on_day = closes.iloc[-1].reindex(score.index) if len(closes) and closes.index[-1] == day else \
        pd.Series(float("nan"), index=score.index)
    eligible = (score.notna() & (on_day > 0)).to_numpy()
    previous = np.zeros(len(score)) if holdings is None else \
        holdings.reindex(score.index).fillna(0.0).to_numpy(dtype="float64")
    w = optimized_weights(returns.to_numpy(dtype="float64"), score.to_numpy(dtype="float64"), eligible, previous,
                          config)
    return pd.Series(w, index=score.index, name="target_weight")


def stage_select(settings: Settings, *, date: str | None = None, include_ml: bool = False, top: int | None = None,
                 symbols: list[str] | None = None, model_version: str | None = None, weights: bool = False,
                 holdings: pd.Series | None = None) -> Selection:
    """Rank the universe on a date (default: the latest) from the stored features.

    With ``weights``, the table also gets ``target_weight``: the optimised book of the day
    (:func:`target_weights` on the composite score, the settings' costs, at most 5% a name),
    penalising turnover against ``holdings`` (symbol -> weight held now; default none).

    Raises
    ------
    StageError
        The store has no prices or no features (the step to run is named).
    UsageError
        ``date`` is not a date, or the store has no features on it (the first and last
        dates available are named).
    """
    with MarketStore.from_settings(settings) as store:
        require_features(store, "select")
        try:
            day = pd.Timestamp(date) if date else None
        except ValueError:
            raise UsageError(f"select: --date {date!r} is not a date (expected YYYY-MM-DD)") from None
        if day is None:
            day = store.read_table(tables.FEATURES, columns=["date"])["date"].max()
        features = store.read_table(tables.FEATURES, start=day, end=day)
        if features.empty:
            dates = store.read_table(tables.FEATURES, columns=["date"])["date"]
            raise UsageError(f"select: the store has no features on {day.date()}; features are available "
                             f"from {dates.min().date()} to {dates.max().date()} (trading days only)")
        universe = store.read_universe() if store.has_table(tables.SECURITIES) else None
        config = None
        if weights:
            from vfr.backtest import BacktestConfig

            config = BacktestConfig.from_settings(settings, weighting="optimized")
        closes = None
        if config is not None:  # the cov_lookback trading days up to the day (about 1.6 calendar days each)
            start = day - pd.Timedelta(days=int(config.cov_lookback * 1.6) + 10)
            prices = store.read_prices(symbols=features["symbol"].unique(), start=start, end=day, columns=["close"])
            closes = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    model, version, error = None, None, None
    if include_ml:
        model, version, error = champion_scores(settings, features, day, model_version)
    sel = select(features, date=day, universe=universe, include_ml=include_ml, model=model,
                 model_version=version, ml_error=error, ml_weight=settings.ml_weight,
                 top=None if config is not None else top, symbols=symbols,
                 ml_neutralize=settings.ml_neutralize, ml_confidence_rule=settings.ml_confidence)
    if config is None or closes is None:
        return sel
    table = sel.table.copy()
    table["target_weight"] = target_weights(closes, table.set_index("symbol")["composite"], day, config,
                                            holdings).to_numpy()
    return replace(sel, table=table if top is None else table.head(top))


def warm_champion_scores(settings: Settings) -> str | None:
    """Score the latest day's cross-section with the champion and store it, so the next
    ``vfr select --include-ml`` answers from the cache (called after `vfr train` sets a
    champion and after `vfr features build` when a champion exists).

    Returns
    -------
    str or None
        None when done, else why not (no features, no usable champion, a store error): warming
        is best effort and never fails the command that calls it.
    """
    from vfr.errors import VFRError

    try:
        with MarketStore.from_settings(settings) as store:
            if not store.has_table(tables.FEATURES):
                return "the store has no features"
            day = store.read_table(tables.FEATURES, columns=["date"])["date"].max()
            rows = store.read_table(tables.FEATURES, start=day, end=day)
        model, _, error = champion_scores(settings, rows, day)
    except (VFRError, OSError) as exc:
        return str(exc)
    if error is not None:
        return error
    return None if model is not None and hasattr(model, "probs") else "the champion could not score the day"
