"""The early-signal model served: one block per symbol, one batch per date.

For a date, every symbol with features that day is scored once through the fallback chain
(champion -> previous version -> rule -> none; :func:`vfr.earnings.stage.serving_chain`) and
the result is kept in process memory for ``prediction_cache_ttl_s``, so
``/api/stocks/analyze`` only looks its symbols up. Model answers are logged once per
(symbol, date, version) in the prediction log under ``earnings_model_name`` with horizon
``<lead>d``; their outcome is the report's surprise (:func:`vfr.monitoring.outcomes`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.data import tables
from vfr.earnings.predictor import LEVELS
from vfr.earnings.stage import expected_reports, score_rows, serving_chain
from vfr.serving.cache import MemoryTTL
from vfr.serving.features import FeatureService
from vfr.serving.models import ModelService
from vfr.serving.predlog import PredictionLogger

log = logging.getLogger(__name__)

#: How far ahead a report date is looked for (calendar days).
REPORT_WINDOW_DAYS = 120
_CHAIN_TTL = 30.0


class EarningsService:
    """Early-signal predictions of a date (cached) and their logging.

    Parameters
    ----------
    settings : Settings
        ``earnings_model_name``, ``earnings_lead_days``, ``prediction_cache_ttl_s``.
    features : FeatureService
        Features, universe and the earnings table of the store.
    models : ModelService
        Registry access (champion, versions).
    predlog : PredictionLogger
    meta : MemoryTTL
        Process-local cache of the chain and of each date's blocks.
    """

    def __init__(self, settings: Settings, features: FeatureService, models: ModelService,
                 predlog: PredictionLogger, meta: MemoryTTL) -> None:
        self.settings = settings
        self.features = features
        self.models = models
        self.predlog = predlog
        self.meta = meta
        self._lock = threading.Lock()
        models.on_change.append(lambda name: self._forget() if name == settings.earnings_model_name else None)

    @property
    def name(self) -> str:
        return self.settings.earnings_model_name

    def _forget(self) -> None:
        self.meta.delete_prefix("es:")

    def reports(self) -> pd.DataFrame | None:
        """The store's earnings table (None without one), cached like the features."""
        hit = self.meta.get("es:reports")
        if hit is None:
            frame = self.features.read(
                lambda s: s.read_table(tables.EARNINGS) if s.has_table(tables.EARNINGS) else None)
            hit = {"r": frame}
            self.meta.set("es:reports", hit, self.settings.feature_cache_ttl_s)
        return hit["r"]

    def chain(self) -> tuple[Any, list[str], str | None]:
        """(predictor, problems loading its models, champion version), rebuilt when the champion changes."""
        problem: str | None = None
        champion: str | None = None
        try:
            champion = self.models.champion(self.name)
        except Exception as exc:  # noqa: BLE001 - registry down: the rule still answers
            problem = f"registry unavailable: {type(exc).__name__}"
        key = f"es:chain:{champion}"
        hit = self.meta.get(key)
        if hit is None:
            with self._lock:
                hit = self.meta.get(key)
                if hit is None:
                    if problem is None:
                        predictor, problems = serving_chain(self.models.registry, self.name)
                    else:
                        from vfr.earnings import EarlySignalPredictor
                        from vfr.earnings.stage import RULE_THRESHOLD

                        predictor, problems = EarlySignalPredictor([], rule_threshold=RULE_THRESHOLD), [problem]
                    hit = (predictor, problems, champion)
                    self.meta.set(key, hit, _CHAIN_TTL)
        return hit

    def for_date(self, day: pd.Timestamp, request_id: str = "-") -> dict[str, dict[str, Any]]:
        """The early-signal block of every symbol with features on ``day`` (cached per date and champion).

        Raises
        ------
        NotFound
            No features on ``day`` (from :meth:`FeatureService.features_for`).
        """
        predictor, problems, champion = self.chain()
        key = f"es:day:{day:%Y-%m-%d}:{champion}"
        hit = self.meta.get(key)
        if hit is not None:
            return hit
        features = self.features.features_for(day)
        reports = self.reports()
        symbols = features["symbol"].astype(str).tolist()
        if reports is None or reports.empty:
            blocks = {s: _null_block("the store has no earnings reports; run "
                                     "`vfr data ingest-fundamentals --earnings FILE`") for s in symbols}
            self.meta.set(key, blocks, self.settings.prediction_cache_ttl_s)
            return blocks
        universe = self.features.universe()
        rows = score_rows(reports, features, symbols, day, universe)
        preds = predictor.predict(rows)
        upcoming = expected_reports(reports, day, within_days=REPORT_WINDOW_DAYS).set_index("symbol")
        versions = {f"model:v{m.version}": str(m.version) for m in predictor.models}
        blocks = {}
        for i, sym in enumerate(symbols):
            p = preds.iloc[i]
            nxt = upcoming.loc[sym] if sym in upcoming.index else None
            report_day = None if nxt is None else pd.Timestamp(nxt["expected_report_date"])
            reason = "; ".join(x for x in [*(problems if int(p["fallback_level"]) > 0 else []), p["reason"]] if x)
            prob = float(p["probability"])
            blocks[sym] = {
                "probability": prob if np.isfinite(prob) else None,
                "predicted_class": None if pd.isna(p["prediction"]) else int(bool(p["prediction"])),
                "confidence": float(p["confidence"]), "confidence_level": str(p["confidence_level"]),
                "expected_report_date": None if report_day is None else report_day.date(),
                "report_date_source": None if nxt is None else str(nxt["report_date_source"]),
                "days_to_report": None if report_day is None else int(np.busday_count(day.date(), report_day.date())),
                "model_name": self.name if str(p["source"]) in versions else None,
                "model_version": versions.get(str(p["source"])),
                "source": str(p["source"]), "fallback_level": int(p["fallback_level"]),
                "fallback": LEVELS[int(p["fallback_level"])], "error": bool(p["error"]), "reason": reason,
            }
        self._log(rows, preds, predictor, day, request_id)
        self.meta.set(key, blocks, self.settings.prediction_cache_ttl_s)
        return blocks

    def _log(self, rows: pd.DataFrame, preds: pd.DataFrame, predictor: Any, day: pd.Timestamp, request_id: str) -> None:
        """Queue each model answer once in the prediction log (rule and null answers are not model outputs)."""
        for model in predictor.models:
            mask = (preds["source"] == f"model:v{model.version}").to_numpy()
            if not mask.any():
                continue
            try:
                self.predlog.log(symbols=rows.loc[mask, "symbol"].tolist(),
                                 probabilities=preds.loc[mask, "probability"].to_numpy(float),
                                 confidences=preds.loc[mask, "confidence"].to_numpy(float),
                                 features=rows[mask], feature_columns=list(model.features), model_name=self.name,
                                 model_version=str(model.version), horizon=f"{self.settings.earnings_lead_days}d",
                                 feature_date=day, request_id=request_id,
                                 classes=preds.loc[mask, "prediction"].astype(bool).to_numpy(int))
            except Exception:  # noqa: BLE001 - logging never fails an answer
                log.exception("early signal: could not queue predictions for the log")

    def upcoming(self, day: pd.Timestamp, within_days: int, request_id: str = "-") -> list[dict[str, Any]]:
        """Blocks of the symbols whose next report is expected within ``within_days`` calendar days,
        highest probability first."""
        blocks = self.for_date(day, request_id)
        end = (day + pd.Timedelta(days=within_days)).date()
        chosen = [{"symbol": s, **b} for s, b in blocks.items()
                  if b["expected_report_date"] is not None and b["expected_report_date"] <= end]
        return sorted(chosen, key=lambda b: -(b["probability"] if b["probability"] is not None else -1.0))


def _null_block(reason: str) -> dict[str, Any]:
    return {"probability": None, "predicted_class": None, "confidence": 0.0, "confidence_level": "NONE",
            "expected_report_date": None, "report_date_source": None, "days_to_report": None,
            "model_name": None, "model_version": None, "source": "none", "fallback_level": 3, "fallback": "none",
            "error": True, "reason": reason}
