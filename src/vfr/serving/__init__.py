"""HTTP API of VFR (FastAPI).

Public interface::

    create_app(settings) -> FastAPI       routes under /api, OpenAPI docs at /docs
    ServingEngine(settings)               the services below, composed (caches, prediction log)
        .features  FeatureService         features / universe of a date (market store, cached)
        .models    ModelService           registry, champion and A/B routing, loaded models, predictions
        .ranking   RankingService         selection (classic + ML), analysis, raw predictions
        .ops       OpsService             prediction log, outcomes, retraining runs, drift, alerts
    serve_day(settings, day, request_id)  one day of serving for `vfr ops replay`
    mint_token(settings, user, tier, days) / verify_token(settings, token)

Layers: serving sits above :mod:`vfr.opsdb`, :mod:`vfr.monitoring` and :mod:`vfr.retraining`,
which never import it.
"""

from vfr.serving.app import create_app
from vfr.serving.auth import TIERS, AuthError, Principal, mint_token, verify_token
from vfr.serving.engine import ServingEngine, serve_day
from vfr.serving.features import FeatureService
from vfr.serving.models import ModelService
from vfr.serving.operations import OpsService
from vfr.serving.ranking import RankingService

__all__ = ["TIERS", "AuthError", "FeatureService", "ModelService", "OpsService", "Principal", "RankingService",
           "ServingEngine", "create_app", "mint_token", "serve_day", "verify_token"]
