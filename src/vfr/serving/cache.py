"""Two-level TTL cache: Redis when configured, process memory otherwise (and when Redis is down).

Values are Python objects. In memory they are stored as they are; in Redis they are pickled
(only this process writes them, under the configured key prefix). A Redis error marks the
backend *down* for a few seconds, during which every call is served from process memory, so a
Redis outage slows nothing down and breaks nothing.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

_MISSING = object()


class MemoryTTL:
    """Bounded in-process TTL cache (LRU eviction beyond ``max_items``).

    Parameters
    ----------
    max_items : int
        Entries kept at most.
    """

    def __init__(self, max_items: int = 2048) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        """Value of ``key`` or ``default`` when absent or expired."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return default
            expires, value = item
            if expires < time.monotonic():
                del self._data[key]
                return default
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        with self._lock:
            self._data[key] = (time.monotonic() + ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with ``prefix``."""
        with self._lock:
            for k in [k for k in self._data if k.startswith(prefix)]:
                del self._data[k]

    def __len__(self) -> int:
        return len(self._data)


class TTLCache:
    """Cache with Redis as the shared level and process memory as the fallback.

    Parameters
    ----------
    url : str, optional
        ``redis://host:port/db``; None keeps everything in process memory.
    prefix : str
        Prefix of every Redis key (``<prefix>:<key>``).
    retry_after_s : float
        How long Redis is left alone after an error before it is tried again.
    l1_ttl_s : float
        With Redis, values read or written are also kept in process memory this long, so hot
        keys (a date's features, its predictions) are not unpickled on every request. Another
        process's update is seen at most this late. 0 disables the local copy.

    Notes
    -----
    ``stats()`` reports hits, misses, Redis errors and the backend in use.
    """

    def __init__(self, url: str | None, prefix: str = "vfr", retry_after_s: float = 5.0, l1_ttl_s: float = 5.0) -> None:
        self.url = url
        self.l1_ttl_s = l1_ttl_s
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self.memory = MemoryTTL()
        self._redis: redis.Redis | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.hits = self.misses = self.errors = 0
        if url:
            import redis

            self._redis = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25,
                                               health_check_interval=0)

    # -- backend selection ------------------------------------------------------------
    def _use_redis(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    def _client(self) -> redis.Redis | None:
        """The Redis client when it is configured and not marked down, else None."""
        return self._redis if self._use_redis() else None

    def _redis_failed(self, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._down_until = time.monotonic() + self.retry_after_s
        log.warning("cache: Redis unavailable (%s); serving from process memory", exc.__class__.__name__)

    @property
    def backend(self) -> str:
        """``redis``, ``memory`` (not configured) or ``memory (redis down)``."""
        if self._redis is None:
            return "memory"
        return "redis" if self._use_redis() else "memory (redis down)"

    # -- API ------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Cached value of ``key`` or None."""
        value = self.memory.get(key, _MISSING) if self._redis is not None and self.l1_ttl_s > 0 else _MISSING
        if value is not _MISSING:  # process-local copy of a Redis value (at most l1_ttl_s old)
            self.hits += 1
            return value
        client = self._client()
        if client is not None:
            try:
                raw = client.get(f"{self.prefix}:{key}")
                # the client is built without decode_responses, so Redis values come back as bytes
                value = pickle.loads(cast(bytes, raw)) if raw is not None else _MISSING
                if value is not _MISSING and self.l1_ttl_s > 0:
                    self.memory.set(key, value, self.l1_ttl_s)
            except Exception as exc:  # noqa: BLE001 - any Redis failure falls back to memory
                self._redis_failed(exc)
                value = self.memory.get(key, _MISSING)
        else:
            value = self.memory.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (no-op when ``ttl`` <= 0)."""
        if ttl <= 0:
            return
        client = self._client()
        if client is not None:
            try:
                client.set(f"{self.prefix}:{key}", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL),
                          px=max(1, int(ttl * 1000)))
                if self.l1_ttl_s > 0:
                    self.memory.set(key, value, min(ttl, self.l1_ttl_s))
                return
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)
        self.memory.set(key, value, ttl)

    def invalidate(self, prefix: str) -> None:
        """Drop cached keys starting with ``prefix`` (both levels; Redis errors ignored)."""
        self.memory.delete_prefix(prefix)
        client = self._client()
        if client is not None:
            try:
                keys = list(client.scan_iter(f"{self.prefix}:{prefix}*", count=500))
                if keys:
                    client.delete(*keys)
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)

    def ping(self) -> bool:
        """Whether Redis answers (False when not configured)."""
        if self._redis is None:
            return False
        try:
            return bool(self._redis.ping())
        except Exception as exc:  # noqa: BLE001
            self._redis_failed(exc)
            return False

    def stats(self) -> dict[str, Any]:
        """Hits, misses, hit ratio, Redis errors, backend and in-memory entries."""
        total = self.hits + self.misses
        return {"backend": self.backend, "hits": self.hits, "misses": self.misses,
                "hit_ratio": round(self.hits / total, 4) if total else None, "redis_errors": self.errors,
                "memory_entries": len(self.memory)}
