"""FastAPI dependencies: settings, the serving services, request id, caller identity, tiers, rate limits.

Routers take the service they use (``Ranking``, ``Models``, ``Features``, ``Ops``), never a
database handle; ``EngineDep`` (all of them) is for the few routes that combine several.

They are ``async`` because each is a few microseconds of work: sync dependencies would each cost
a hop through the thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vfr.config import Settings
from vfr.serving.auth import AuthError, Principal, verify_token
from vfr.serving.earnings import EarningsService
from vfr.serving.engine import ServingEngine
from vfr.serving.features import FeatureService
from vfr.serving.models import ModelService
from vfr.serving.operations import OpsService
from vfr.serving.ranking import RankingService
from vfr.serving.ratelimit import TierLimiter

_bearer = HTTPBearer(auto_error=False, description="JWT bearer token (`vfr auth token`).")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> ServingEngine:
    return request.app.state.engine


async def get_features(request: Request) -> FeatureService:
    return request.app.state.engine.features


async def get_models(request: Request) -> ModelService:
    return request.app.state.engine.models


async def get_ranking(request: Request) -> RankingService:
    return request.app.state.engine.ranking


async def get_earnings(request: Request) -> EarningsService:
    return request.app.state.engine.earnings


async def get_ops(request: Request) -> OpsService:
    return request.app.state.engine.ops


async def get_limiter(request: Request) -> TierLimiter:
    return request.app.state.limiter


async def request_id(request: Request) -> str:
    return request.state.request_id


async def principal(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> Principal:
    """The caller: from a valid bearer token, else anonymous (by client address).

    The token is read here rather than through a ``Depends(_bearer)``, so that routes open to
    anonymous callers carry no security requirement in the OpenAPI schema (the bearer scheme
    is declared by :func:`require_tier`; ``vfr.serving.docs`` marks it optional on open routes).

    Raises
    ------
    HTTPException
        401 when a token is given but invalid or expired.
    """
    credentials = await _bearer(request)
    if credentials is None:
        host = request.client.host if request.client else "unknown"
        return Principal(user=f"ip:{host}", tier="anonymous")
    try:
        return verify_token(settings, credentials.credentials)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


async def rate_limited(caller: Annotated[Principal, Depends(principal)],
                 limiter: Annotated[TierLimiter, Depends(get_limiter)]) -> Principal:
    """Count the call against the caller's tier; 429 with Retry-After when over the limit."""
    decision = limiter.hit(caller.tier, caller.user)
    if not decision.allowed:
        raise HTTPException(429, f"rate limit of the {caller.tier} tier ({decision.limit} calls per window) "
                                 f"exceeded; retry in {decision.retry_after} s",
                            headers={"Retry-After": str(decision.retry_after),
                                     "X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": "0"})
    return caller


def require_tier(*tiers: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: an authenticated caller in one of ``tiers`` (401 without token, 403 otherwise)."""

    async def dep(caller: Annotated[Principal, Depends(rate_limited)],
                  _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        if not caller.authenticated:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if caller.tier not in tiers:
            raise HTTPException(403, f"the {caller.tier} tier may not call this endpoint (needs {', '.join(tiers)})")
        return caller

    return dep


EngineDep = Annotated[ServingEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Features = Annotated[FeatureService, Depends(get_features)]
Models = Annotated[ModelService, Depends(get_models)]
Ranking = Annotated[RankingService, Depends(get_ranking)]
Ops = Annotated[OpsService, Depends(get_ops)]
Earnings = Annotated[EarningsService, Depends(get_earnings)]
RequestId = Annotated[str, Depends(request_id)]
AnyCaller = Annotated[Principal, Depends(rate_limited)]
Member = Annotated[Principal, Depends(require_tier("free", "pro", "admin"))]
Admin = Annotated[Principal, Depends(require_tier("admin"))]
