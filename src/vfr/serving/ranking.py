"""Ranking for serving: the classic and ML-blended selection, analysis with explanations, and
raw predictions, ranked with :func:`vfr.scoring.select` (never re-implemented).

ML can never break the classic answer: any ML failure yields the classic ranking with
``ml.status`` saying what happened (see :meth:`vfr.serving.models.ModelService.run`).
Whole-universe rankings are cached in process memory with their response rows; every served
ML prediction goes to the prediction log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.scoring import GROUP_SIGNALS, ml_components, select
from vfr.serving.cache import MemoryTTL, SingleFlight
from vfr.serving.errors import MLUnavailable, NotFound, public_reason
from vfr.serving.features import FeatureService
from vfr.serving.models import MLResult, ModelService, ModelSpecs
from vfr.serving.predlog import PredictionLogger

log = logging.getLogger(__name__)

#: The ``ml`` block of a response that did not ask for ML.
DISABLED = {"requested": False, "status": "disabled", "horizon": None, "models": [], "fallback": [], "route": None,
            "confidence_threshold": None, "latency_ms": None}


class _ProbPredictor:
    """Adapter handing cached probabilities (by symbol) to :func:`vfr.scoring.select`."""

    def __init__(self, probs: pd.Series) -> None:
        self.probs = probs

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        return self.probs.reindex(rows["symbol"]).to_numpy(dtype=float)


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def response_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The ``results`` rows of a response from a ranked table (JSON-ready; NaN as None)."""
    groups = [f"{g}_score" for g in GROUP_SIGNALS if f"{g}_score" in table.columns]
    out = []
    for r in table.to_dict("records"):
        row = {"rank": int(r["rank"]), "symbol": r["symbol"],
               "sector": r.get("sector") if isinstance(r.get("sector"), str) else None,
               "factor_scores": {g.removesuffix("_score"): _clean(r[g]) for g in groups},
               "classic_score": _clean(r["classic_score"]), "composite": _clean(r["composite"]),
               "recommendation": r["recommendation"]}
        if "ml_probability" in r:
            row |= {"ml_probability": _clean(r["ml_probability"]), "ml_confidence": _clean(r["ml_confidence"]),
                    "ml_score": _clean(r["ml_score"]), "ml_blended": bool(r.get("ml_blended", True))}
        else:
            row |= {"ml_probability": None, "ml_confidence": None, "ml_score": None, "ml_blended": None}
        out.append(row)
    return out


class RankingService:
    """Selection, analysis and predictions of a date.

    Parameters
    ----------
    settings : Settings
        ``ml_weight``, ``prediction_cache_ttl_s``.
    features : FeatureService
        Features and universe of a date.
    models : ModelService
        The ML part of a request; rankings cached from an old routing are dropped when it
        reports a change.
    predlog : PredictionLogger
        Where served predictions are queued.
    meta : MemoryTTL
        Process-local cache of whole-universe rankings and explanations.
    flight : SingleFlight, optional
        Whole-universe rankings missing from ``meta`` are computed once however many requests
        ask for them at the same time (the others wait and share the answer).
    """

    def __init__(self, settings: Settings, features: FeatureService, models: ModelService, predlog: PredictionLogger,
                 meta: MemoryTTL, flight: SingleFlight | None = None) -> None:
        self.settings = settings
        self.flight = flight or SingleFlight()
        self.features = features
        self.models = models
        self.predlog = predlog
        self.meta = meta
        self._logged: set[str] = set()  # whole-universe rankings already handed to the log
        models.on_change.append(lambda name: self.meta.delete_prefix("scored:"))

    # -- helpers -----------------------------------------------------------------------------
    def _symbols_for(self, sector: str | None, symbols: list[str] | None,
                     universe: pd.DataFrame | None) -> list[str] | None:
        if sector:
            if universe is None:
                raise NotFound("no universe (securities) in the store; sectors are unknown")
            match = universe[universe["sector"].str.lower() == sector.lower()]
            if match.empty:
                known = sorted(universe["sector"].dropna().unique())
                raise NotFound(f"unknown sector {sector!r}; known: {known}")
            return match["symbol"].tolist()
        return symbols or None

    def _log(self, table: pd.DataFrame, ml: MLResult, features: pd.DataFrame, day: pd.Timestamp, horizon: str,
             request_id: str) -> None:
        """Queue the ML rows of ``table`` in the prediction log, once per model that answered."""
        if ml.probs is None or "ml_probability" not in table.columns or table.empty:
            return
        for model in ml.loaded:
            probs = ml.probs if len(ml.loaded) == 1 else self.models.predict_date(model, day, features)
            syms = table["symbol"].tolist()
            self.predlog.log(symbols=syms, probabilities=probs.reindex(syms).to_numpy(dtype=float),
                             confidences=table["ml_confidence"].to_numpy(dtype=float), features=features,
                             feature_columns=model.feature_columns, model_name=model.name,
                             model_version=str(model.version), horizon=horizon, feature_date=day,
                             request_id=request_id)

    def _scored(self, key: str, build) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """A whole-universe ranking and its response rows, cached in process memory (computed once
        for all the requests that miss it at the same time)."""
        hit = self.meta.get(key)
        if hit is not None:
            return hit

        def compute() -> tuple:
            again = self.meta.get(key)
            if again is not None:
                return again
            table = build()
            rows = response_rows(table)
            fresh: tuple = (table, rows, {r["symbol"]: r for r in rows}, {})
            self.meta.set(key, fresh, self.settings.prediction_cache_ttl_s)
            return fresh

        return self.flight.do(key, compute)

    def _select(self, features, day, universe, include_ml, predictor, wanted, w, ml_error=None):
        try:
            return select(features, date=day, universe=universe, include_ml=include_ml, model=predictor,
                          ml_error=ml_error, ml_weight=w, symbols=wanted, ml_neutralize=self.settings.ml_neutralize,
                          ml_confidence_rule=self.settings.ml_confidence)
        except ValueError as exc:
            raise NotFound(public_reason(exc).removeprefix("select: ")) from exc

    def _blend(self, features, day, universe, predictor, ml: MLResult, wanted, threshold, w) -> pd.DataFrame:
        """:func:`vfr.scoring.select` with ML, blending only predictions with ``ml_confidence >=
        threshold`` (the others keep their classic score; ``ml_blended`` says which)."""
        try:
            sel = select(features, date=day, universe=universe, include_ml=True, model=predictor,
                         ml_error=ml.status.removeprefix("unavailable: "), ml_weight=w, symbols=wanted,
                         ml_min_confidence=threshold, ml_neutralize=self.settings.ml_neutralize,
                         ml_confidence_rule=self.settings.ml_confidence)
        except ValueError as exc:
            raise NotFound(public_reason(exc).removeprefix("select: ")) from exc
        if predictor is not None and sel.ml_status != "ok":  # prediction failed inside select
            ml.status, ml.probs, ml.models = sel.ml_status, None, []
        return sel.table

    @staticmethod
    def _answer(scored: tuple, day: pd.Timestamp, ml: dict[str, Any], unknown: list[str], top: int | None,
                ml_result: MLResult | None = None) -> dict:
        table, rows = scored[0], scored[1]
        rows = rows if top is None else rows[:top]
        out = {"date": day.date().isoformat(), "count": len(rows), "ml": ml, "unknown_symbols": unknown,
               "results": rows}
        if len(scored) > 3:  # cached whole-universe ranking: its JSON is serialised once per `top`
            cache = scored[3]
            if top not in cache:
                cache[top] = json.dumps(rows, separators=(",", ":"))
            out["_results_json"] = cache[top]
        if ml_result is not None:
            out["_ml"], out["_table"] = ml_result, table
            out["_by_symbol"] = scored[2] if len(scored) > 2 else {r["symbol"]: r for r in scored[1]}
        return out

    # -- use cases ---------------------------------------------------------------------------
    def rank(self, *, date: Any = None, include_ml: bool = False, ml_models: ModelSpecs | None = None,
             horizon: str = "1w", threshold: float = 0.5, top: int | None = None, sector: str | None = None,
             symbols: list[str] | None = None, request_id: str = "-", log_rows: bool = True) -> dict[str, Any]:
        """Rank the universe, a sector or a list of symbols on a date (the select use case).

        Parameters
        ----------
        date : date-like, optional
            Default the latest feature date.
        include_ml : bool
            Blend ML into the composite (``threshold``: minimum ``ml_confidence`` blended).
        ml_models : list of (name, version or None), optional
            Default the configured model, champion or challenger by A/B routing.
        top, sector, symbols
            Restrict the answer.
        log_rows : bool
            Queue the served ML rows in the prediction log.

        Returns
        -------
        dict
            ``date``, ``count``, ``ml``, ``unknown_symbols``, ``results`` (and private ``_``
            keys used by :meth:`analyze` and the router).

        Raises
        ------
        NotFound
            Unknown date or sector, or no symbol left.
        StoreUnavailable
            The market store is unreachable.
        """
        day = self.features.day(date)
        features = self.features.features_for(day)
        universe = self.features.universe()
        wanted = self._symbols_for(sector, symbols, universe)
        unknown = sorted(set(symbols or []) - set(features["symbol"])) if symbols else []
        w = self.settings.ml_weight
        if not include_ml:
            if wanted:
                table = self._select(features, day, universe, False, None, wanted, w).table
                scored = (table, response_rows(table))
            else:
                scored = self._scored(f"classic:{day:%Y-%m-%d}", lambda: self._select(
                    features, day, universe, False, None, None, w).table)
            return self._answer(scored, day, dict(DISABLED), unknown, top)
        ml = self.models.run(ml_models or [], day, features, horizon, request_id)
        predictor = _ProbPredictor(ml.probs) if ml.probs is not None else None
        if predictor is not None and not wanted:
            key = f"scored:{day:%Y-%m-%d}:{horizon}:{threshold}:" + ",".join(
                f"{m['name']}:{m['version']}" for m in ml.models)
            scored = self._scored(key, lambda: self._blend(features, day, universe, predictor, ml, None, threshold, w))
        else:
            table = self._blend(features, day, universe, predictor, ml, wanted, threshold, w)
            scored = (table, response_rows(table))
        if log_rows:
            once = f"{key}:{top}" if predictor is not None and not wanted else None
            if once is None or once not in self._logged:
                table = scored[0] if top is None else scored[0].head(top)
                self._log(table, ml, features, day, horizon, request_id)
                if once is not None:
                    if len(self._logged) > 10_000:
                        self._logged.clear()
                    self._logged.add(once)
        return self._answer(scored, day, ml.public(horizon, threshold), unknown, top, ml_result=ml)

    def analyze(self, *, symbols: list[str], date: Any = None, horizon: str = "1w",
                ml_models: ModelSpecs | None = None, threshold: float = 0.5,
                n_contributions: int = 5, request_id: str = "-") -> dict[str, Any]:
        """Factor scores, ML prediction with top feature contributions, composite, recommendation.

        The rows are those of the whole-universe :meth:`rank` with ML (same caches), so an
        analysed symbol's composite and rank are exactly its row of the selection.

        Raises
        ------
        NotFound
            None of ``symbols`` has features on the date.
        """
        day = self.features.day(date)
        features = self.features.features_for(day)
        full = self.rank(date=day, include_ml=True, ml_models=ml_models, horizon=horizon, threshold=threshold,
                         request_id=request_id, log_rows=False)
        ml = full["ml"]
        by_symbol = full["_by_symbol"]
        missing = sorted({s for s in symbols if s not in by_symbol})
        if len(missing) == len(set(symbols)):
            raise NotFound(f"no features on {day.date()} for {missing}")
        if ml["models"]:
            tag = f"{day:%Y-%m-%d}:{horizon}:" + ",".join(f"{m['name']}:{m['version']}" for m in ml["models"])
            fresh = [s for s in symbols if s in by_symbol and f"{tag}:{s}" not in self._logged]
            if fresh:
                served = full["_table"][full["_table"]["symbol"].isin(fresh)]
                self._log(served, full["_ml"], features, day, horizon, request_id)
                if len(self._logged) > 100_000:
                    self._logged.clear()
                self._logged.update(f"{tag}:{s}" for s in fresh)
        model = None
        if ml["models"]:
            model = self.models.load(ml["models"][0]["name"], ml["models"][0]["version"])
        contributions: dict[str, list[dict[str, Any]]] = {}
        if model is not None:
            contributions = self.explain(model, day, features, symbols, n_contributions)
        out = []
        for sym in dict.fromkeys(symbols):
            r = by_symbol.get(sym)
            if r is None:
                continue
            pred = None
            if r.get("ml_probability") is not None:
                p = r["ml_probability"]
                pred = {"probability": p, "predicted_class": int(p >= 0.5), "direction": "UP" if p >= 0.5 else "DOWN",
                        "confidence": r["ml_confidence"], "ml_score": r["ml_score"], "blended": r["ml_blended"],
                        "model_name": model.name if model else None,
                        "model_version": str(model.version) if model else None,
                        "top_contributions": contributions.get(sym, [])}
            out.append({"symbol": sym, "sector": r["sector"], "universe_rank": r["rank"],
                        "universe_size": full["count"], "factor_scores": r["factor_scores"],
                        "classic_score": r["classic_score"], "ml_prediction": pred, "composite": r["composite"],
                        "recommendation": r["recommendation"]})
        return {"date": full["date"], "ml": ml, "unknown_symbols": missing, "results": out}

    def explain(self, model, day: pd.Timestamp, features: pd.DataFrame, symbols: list[str],
                n: int) -> dict[str, list[dict[str, Any]]]:
        """Top ``n`` per-feature contributions (tree SHAP, ``model.contributions``) per symbol,
        largest in absolute value first, cached per model and date.

        Returns
        -------
        dict
            symbol -> ``[{"feature", "value", "contribution"}, ...]``; symbols without
            features are left out, and every symbol when the model cannot explain (logged).
        """
        prefix = f"contrib:{model.name}:{model.version}:{day:%Y-%m-%d}:{n}:"
        out = {s: v for s in symbols if (v := self.meta.get(prefix + s)) is not None}
        todo = [s for s in symbols if s not in out]
        if not todo:
            return out
        rows = features[features["symbol"].isin(todo)]
        if rows.empty:
            return out
        try:
            contrib = self.models.contributions(model, rows)
            values = rows[model.feature_columns].to_numpy(dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - explanations are optional
            log.warning("analyze: contributions failed (%s)", exc.__class__.__name__)
            return out
        columns = list(contrib.columns)
        position = {c: i for i, c in enumerate(model.feature_columns)}
        for sym, xs, cs in zip(rows["symbol"], values, contrib.to_numpy(dtype=float), strict=True):
            order = np.argsort(-np.abs(cs))[:n]
            out[sym] = [{"feature": columns[i], "value": _clean(xs[position[columns[i]]]),
                         "contribution": _clean(cs[i])} for i in order]
            self.meta.set(prefix + sym, out[sym], self.settings.prediction_cache_ttl_s)
        return out

    def predict(self, *, symbols: list[str], date: Any = None, horizon: str = "1w",
                ml_models: ModelSpecs | None = None, request_id: str = "-") -> dict[str, Any]:
        """Raw model probabilities for symbols, with their confidence (queued in the prediction log).

        Raises
        ------
        NotFound
            None of ``symbols`` has features on the date, or no version of the model predicts
            ``horizon``.
        MLUnavailable
            No model could answer (503: registry down, artifacts unreadable, timeout).
        """
        day = self.features.day(date)
        features = self.features.features_for(day)
        missing = sorted(set(symbols) - set(features["symbol"]))
        if len(missing) == len(set(symbols)):
            raise NotFound(f"no features on {day.date()} for {missing}")
        ml = self.models.run(ml_models or [], day, features, horizon, request_id)
        if ml.probs is None:
            reason = ml.status.removeprefix("unavailable: ")
            raise NotFound(reason) if ml.not_found else MLUnavailable(reason)
        _, conf = ml_components(ml.probs, pd.Series(day, index=ml.probs.index))
        syms = [s for s in dict.fromkeys(symbols) if s in ml.probs.index]
        table = pd.DataFrame({"symbol": syms, "ml_probability": ml.probs.reindex(syms).to_numpy(),
                              "ml_confidence": conf.reindex(syms).to_numpy()})
        self._log(table, ml, features, day, horizon, request_id)
        preds = [{"symbol": s, "probability": _clean(p), "predicted_class": int(p >= 0.5), "confidence": _clean(c)}
                 for s, p, c in zip(syms, table["ml_probability"], table["ml_confidence"], strict=True)]
        return {"date": day.date().isoformat(), "ml": ml.public(horizon, None), "unknown_symbols": missing,
                "predictions": preds}
