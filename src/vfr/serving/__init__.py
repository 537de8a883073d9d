"""HTTP API of VFR (FastAPI).

Public interface::

    create_app(settings) -> FastAPI       routes under /api, OpenAPI docs at /docs
    ServingEngine(settings)               caches, models, prediction log (the business logic)
    mint_token(settings, user, tier, days) / verify_token(settings, token)
"""

from vfr.serving.app import create_app
from vfr.serving.auth import TIERS, AuthError, Principal, mint_token, verify_token
from vfr.serving.engine import ServingEngine

__all__ = ["TIERS", "AuthError", "Principal", "ServingEngine", "create_app", "mint_token", "verify_token"]
