"""JWT bearer tokens (HS256 or RS256) and the tiers they carry.

A token's claims: ``sub`` (user), ``tier`` (``free``, ``pro`` or ``admin``), ``iat``, ``exp``.
``exp`` is required, and a token valid for longer than ``jwt_max_lifetime_days`` (``exp - iat``,
or ``exp - now`` without ``iat``) is refused.

Keys come from the settings, taken as given: ``jwt_secret`` (HS256 secret of at least
:data:`MIN_SECRET_BYTES` bytes, or the RS256 private key as PEM text) and ``jwt_public_key``
(RS256 public key, PEM text). A key kept in a file is named explicitly by ``jwt_secret_file`` /
``jwt_public_key_file``; a secret that happens to look like a path is never replaced by a file's
content. :func:`check_keys` (run by ``create_app``) refuses a short HS256 secret at start-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from vfr.config import Settings
from vfr.errors import SettingsError

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


#: Shortest HS256 secret accepted (RFC 7518 section 3.2: a key at least as long as the hash output).
MIN_SECRET_BYTES = 32
#: Clock skew tolerated on ``exp - iat`` against the lifetime limit, seconds.
_LEEWAY_S = 60


def _key(value: str | None, path: Path | None, name: str) -> str | None:
    """``value`` as given, else the content of ``path`` (trailing newline removed), else None."""
    if value:
        return value
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_text().rstrip("\r\n") or None
    except OSError as exc:
        raise SettingsError(f"VFR_{name.upper()}_FILE cannot be read ({exc.strerror or exc.__class__.__name__})") \
            from exc


def check_keys(settings: Settings) -> None:
    """Refuse unusable token keys at start-up (one-line :class:`~vfr.errors.SettingsError`).

    An HS256 secret must be at least :data:`MIN_SECRET_BYTES` bytes; a key file must be readable.
    No key at all is allowed (every token is then refused with 401).
    """
    secret = _key(settings.jwt_secret, settings.jwt_secret_file, "jwt_secret")
    _key(settings.jwt_public_key, settings.jwt_public_key_file, "jwt_public_key")
    if secret and settings.jwt_algorithm == "HS256" and len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"VFR_JWT_SECRET is {len(secret.encode())} bytes; HS256 needs at least "
                            f"{MIN_SECRET_BYTES} (generate one with `openssl rand -hex 32`)")


def _signing_key(settings: Settings) -> str:
    try:
        check_keys(settings)
        key = _key(settings.jwt_secret, settings.jwt_secret_file, "jwt_secret")
    except SettingsError as exc:
        raise AuthError(f"token signing is misconfigured: {exc}") from exc
    if not key:
        raise AuthError("token signing is not configured (set VFR_JWT_SECRET or VFR_JWT_SECRET_FILE)")
    return key


def _verify_key(settings: Settings) -> str:
    if settings.jwt_algorithm == "RS256":
        try:
            key = _key(settings.jwt_public_key, settings.jwt_public_key_file, "jwt_public_key")
        except SettingsError as exc:
            raise AuthError(f"token verification is misconfigured: {exc}") from exc
        if not key:
            raise AuthError("token verification is not configured (set VFR_JWT_PUBLIC_KEY or VFR_JWT_PUBLIC_KEY_FILE)")
        return key
    return _signing_key(settings)


def mint_token(settings: Settings, user: str, tier: str = "free", days: float = 30.0) -> str:
    """Signed token for ``user`` in ``tier`` valid for ``days``.

    Raises
    ------
    ValueError
        Unknown tier, empty user, non-positive duration or one over ``jwt_max_lifetime_days``.
    AuthError
        No signing key configured.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {list(TIERS)}, got {tier!r}")
    if not user:
        raise ValueError("user must not be empty")
    if days <= 0:
        raise ValueError("days must be positive")
    if days > settings.jwt_max_lifetime_days:
        raise ValueError(f"days must be at most {settings.jwt_max_lifetime_days:g} (VFR_JWT_MAX_LIFETIME_DAYS)")
    now = int(time.time())
    claims = {"sub": user, "tier": tier, "iat": now, "exp": now + int(days * 86400)}
    return jwt.encode(claims, _signing_key(settings), algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> Principal:
    """Principal of a valid token.

    Raises
    ------
    AuthError
        Invalid signature, expired, wrong algorithm, missing/unknown claims (``exp`` included) or
        a lifetime over ``jwt_max_lifetime_days``.
    """
    try:
        claims = jwt.decode(token, _verify_key(settings), algorithms=[settings.jwt_algorithm],
                            options={"require": ["sub", "exp", "tier"]})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("invalid token") from exc
    issued = claims.get("iat")
    start = issued if isinstance(issued, int | float) else time.time()
    if claims["exp"] - start > settings.jwt_max_lifetime_days * 86400 + _LEEWAY_S:
        raise AuthError(f"invalid token: valid for longer than {settings.jwt_max_lifetime_days:g} days")
    if claims.get("tier") not in TIERS:
        raise AuthError("invalid token: unknown tier")
    return Principal(user=str(claims["sub"]), tier=str(claims["tier"]))
