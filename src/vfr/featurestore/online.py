"""Online feature store: the latest vector per (view, symbol), with a time-to-live.

Redis when a URL is configured and the server answers; otherwise (or when Redis becomes
unreachable) an in-process dictionary owned by the instance (no module-level state). Each
vector is stored as JSON under ``<prefix>:<view>:<symbol>`` with ``SET ... EX ttl``; the memory
backend keeps an expiry time per key and drops expired keys on read.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

#: Default time-to-live of an online vector: 15 minutes.
DEFAULT_TTL_S = 15 * 60


def _encode(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _encode(value.item())
    return value


class OnlineFeatureStore:
    """Latest feature vector per symbol, Redis-backed when available.

    Parameters
    ----------
    redis_url : str, optional
        E.g. ``redis://127.0.0.1:6379/0``. None: process memory only.
    prefix : str
        Key prefix (use a unique one per application / test).
    ttl_s : float
        Time-to-live of a vector in seconds (default 900 = 15 minutes). Redis rounds up to
        whole milliseconds (``PX``).
    connect_timeout_s : float
        Socket timeout of the Redis connection and commands (default 0.25 s).
    clock : callable, optional
        Monotonic clock of the memory backend (seconds); default :func:`time.monotonic`.

    Attributes
    ----------
    backend : str
        ``"redis"`` or ``"memory"``.
    fallback_reason : str or None
        Why the memory backend is used although a Redis URL was given.
    """

    def __init__(self, redis_url: str | None = None, *, prefix: str = "vfr:fs",
                 ttl_s: float = DEFAULT_TTL_S, connect_timeout_s: float = 0.25,
                 clock: Callable[[], float] | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.prefix = prefix
        self.ttl_s = float(ttl_s)
        self._clock = clock or time.monotonic
        self._memory: dict[str, tuple[float, str]] = {}
        self._redis: Any = None
        self.fallback_reason: str | None = None
        if redis_url is not None:
            try:
                import redis

                client = redis.Redis.from_url(redis_url, socket_timeout=connect_timeout_s,
                                              socket_connect_timeout=connect_timeout_s)
                client.ping()
                self._redis = client
            except Exception as exc:  # noqa: BLE001 - any failure: process memory
                self._fallback(exc)

    @property
    def backend(self) -> str:
        """``redis`` or ``memory``."""
        return "redis" if self._redis is not None else "memory"

    def _fallback(self, exc: BaseException) -> None:
        self.fallback_reason = f"{type(exc).__name__}: {exc}"
        log.warning("online feature store: Redis unavailable (%s); using process memory",
                    self.fallback_reason)
        self._redis = None

    def _key(self, view: str, symbol: str) -> str:
        return f"{self.prefix}:{view}:{symbol}"

    def put(self, view: str, symbol: str, vector: Mapping[str, Any]) -> None:
        """Store the latest vector of a symbol (replaces the previous one, resets the TTL).

        Parameters
        ----------
        view : str
            Feature view name.
        symbol : str
            Entity key.
        vector : mapping
            Feature values and metadata (``known_at``, ``quality_score``, ...); NaN/inf are
            stored as null, timestamps as ISO strings.
        """
        payload = json.dumps({k: _encode(v) for k, v in vector.items()})
        key = self._key(view, symbol)
        if self._redis is not None:
            try:
                self._redis.set(key, payload, px=math.ceil(self.ttl_s * 1000))
                return
            except Exception as exc:  # noqa: BLE001 - Redis went away: fall back
                self._fallback(exc)
        self._memory[key] = (self._clock() + self.ttl_s, payload)

    def put_frame(self, view: str, frame: pd.DataFrame) -> int:
        """Store the last row of each symbol of ``frame`` (sorted by ``known_at`` when present).

        Returns
        -------
        int
            Vectors stored.
        """
        order = "known_at" if "known_at" in frame.columns else "date"
        latest = frame.sort_values(order, kind="stable").groupby("symbol", sort=False).tail(1)
        for rec in latest.to_dict("records"):
            self.put(view, str(rec["symbol"]), rec)
        return len(latest)

    def get(self, view: str, symbol: str) -> dict[str, Any] | None:
        """Latest vector of a symbol, or None when absent or expired."""
        key = self._key(view, symbol)
        if self._redis is not None:
            try:
                raw = self._redis.get(key)
                return None if raw is None else json.loads(raw)
            except Exception as exc:  # noqa: BLE001
                self._fallback(exc)
        item = self._memory.get(key)
        if item is None:
            return None
        expires, payload = item
        if self._clock() >= expires:
            del self._memory[key]
            return None
        return json.loads(payload)

    def get_many(self, view: str, symbols: list[str]) -> pd.DataFrame:
        """Latest vectors of several symbols as a frame (missing/expired symbols left out)."""
        if self._redis is not None:
            try:
                raws = self._redis.mget([self._key(view, s) for s in symbols])
                recs = [json.loads(r) for r in raws if r is not None]
                return pd.DataFrame(recs)
            except Exception as exc:  # noqa: BLE001
                self._fallback(exc)
        recs = [v for v in (self.get(view, s) for s in symbols) if v is not None]
        return pd.DataFrame(recs)

    def ttl_remaining(self, view: str, symbol: str) -> float | None:
        """Seconds before the vector expires (None when absent)."""
        key = self._key(view, symbol)
        if self._redis is not None:
            ms = self._redis.pttl(key)
            return None if ms is None or ms < 0 else ms / 1000.0
        item = self._memory.get(key)
        if item is None:
            return None
        left = item[0] - self._clock()
        return left if left > 0 else None

    def delete_all(self) -> int:
        """Delete every key under this store's prefix; returns how many."""
        if self._redis is not None:
            keys = list(self._redis.scan_iter(match=f"{self.prefix}:*", count=1000))
            return int(self._redis.delete(*keys)) if keys else 0
        n = len(self._memory)
        self._memory.clear()
        return n
