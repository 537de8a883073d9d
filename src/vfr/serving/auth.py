"""JWT bearer tokens (HS256 or RS256) and the tiers they carry.

A token's claims: ``sub`` (user), ``tier`` (``free``, ``pro`` or ``admin``), ``iat``, ``exp``.
Keys come from the settings: ``jwt_secret`` (HS256 secret, or RS256 private key as PEM text or a
file path) and ``jwt_public_key`` (RS256 public key, PEM text or path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from vfr.config import Settings

TIERS: tuple[str, ...] = ("free", "pro", "admin")


class AuthError(Exception):
    """The token is missing, malformed, expired or not signed by our key."""


@dataclass(frozen=True)
class Principal:
    """Who calls: ``user`` (token subject or ``ip:<address>``) and ``tier`` (or ``anonymous``)."""

    user: str
    tier: str

    @property
    def authenticated(self) -> bool:
        return self.tier in TIERS


def _pem(value: str | None) -> str | None:
    if value and "-----BEGIN" not in value and len(value) < 4096:
        path = Path(value).expanduser()
        if path.is_file():
            return path.read_text()
    return value


def _signing_key(settings: Settings) -> str:
    key = _pem(settings.jwt_secret)
    if not key:
        raise AuthError("token signing is not configured (set VFR_JWT_SECRET)")
    return key


def _verify_key(settings: Settings) -> str:
    if settings.jwt_algorithm == "RS256":
        key = _pem(settings.jwt_public_key)
        if not key:
            raise AuthError("token verification is not configured (set VFR_JWT_PUBLIC_KEY)")
        return key
    return _signing_key(settings)


def mint_token(settings: Settings, user: str, tier: str = "free", days: float = 30.0) -> str:
    """Signed token for ``user`` in ``tier`` valid for ``days``.

    Raises
    ------
    ValueError
        Unknown tier, empty user or non-positive duration.
    AuthError
        No signing key configured.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {list(TIERS)}, got {tier!r}")
    if not user:
        raise ValueError("user must not be empty")
    if days <= 0:
        raise ValueError("days must be positive")
    now = int(time.time())
    claims = {"sub": user, "tier": tier, "iat": now, "exp": now + int(days * 86400)}
    return jwt.encode(claims, _signing_key(settings), algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> Principal:
    """Principal of a valid token.

    Raises
    ------
    AuthError
        Invalid signature, expired, wrong algorithm or missing/unknown claims.
    """
    try:
        claims = jwt.decode(token, _verify_key(settings), algorithms=[settings.jwt_algorithm],
                            options={"require": ["sub", "exp", "tier"]})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("invalid token") from exc
    if claims.get("tier") not in TIERS:
        raise AuthError("invalid token: unknown tier")
    return Principal(user=str(claims["sub"]), tier=str(claims["tier"]))
