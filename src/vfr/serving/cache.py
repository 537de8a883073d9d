"""Two-level TTL cache: Redis when configured, process memory otherwise (and when Redis is down),
the circuit breaker every Redis user of the API shares, and single-flight computation.

Values are Python objects. In memory they are stored as they are; in Redis they are pickled
(only this process writes them, under the configured key prefix).

Redis outages cost a request at most one short timeout: the client gives up after
:data:`REDIS_TIMEOUT_S` (connect and read, no retries), and the first failure opens the
:class:`RedisBreaker`, after which nothing touches Redis for ``retry_after_s``; then one caller
probes it (the others keep using memory) and a success closes the breaker again. The rate
limiter shares the cache's breaker, so one failure moves both to process memory.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
T = TypeVar("T")

_MISSING = object()
#: Connect and read timeout of every Redis call (seconds): a dead or unreachable Redis costs a
#: request at most this long once, then the breaker skips it.
REDIS_TIMEOUT_S = 0.1
#: How long an open breaker keeps callers away from Redis before one probe (seconds).
RETRY_AFTER_S = 5.0


def redis_options() -> dict[str, Any]:
    """Keyword arguments of every Redis client of the API: short timeouts, no retries, no backoff."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}


class RedisBreaker:
    """Circuit breaker in front of Redis, shared by the caches and the rate limiter of one app.

    *Closed* (Redis up): every call goes to Redis. A failure *opens* it: for ``retry_after_s``
    :meth:`allow` says no and callers use process memory. When that time has passed, exactly
    one caller is let through as a probe (the window restarts for the others); its
    :meth:`success` closes the breaker, its :meth:`failure` keeps it open for another window.

    Parameters
    ----------
    retry_after_s : float
        How long Redis is left alone after a failure.
    """

    def __init__(self, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.retry_after_s = retry_after_s
        self.down = False
        self.failures = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether this call may use Redis now (True while closed; once per window while open)."""
        if not self.down:
            return True
        with self._lock:
            now = time.monotonic()
            if not self.down:
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_after_s  # this caller probes; the others wait a window
            return True

    def success(self) -> None:
        """A Redis call worked: close the breaker."""
        if self.down:
            with self._lock:
                if self.down:
                    self.down = False
                    log.warning("Redis is reachable again; shared caches and rate limits are back in Redis")

    def failure(self, exc: BaseException, who: str = "cache") -> None:
        """A Redis call failed: open the breaker for ``retry_after_s``."""
        with self._lock:
            self.failures += 1
            was_down, self.down = self.down, True
            self._retry_at = time.monotonic() + self.retry_after_s
        if not was_down:
            log.warning("%s: Redis unavailable (%s); serving from process memory for %g s before retrying",
                        who, exc.__class__.__name__, self.retry_after_s)


class SingleFlight:
    """One computation per key at a time: concurrent callers of a key being computed wait for it
    and share its result (or its exception) instead of computing it again.

    Used for the expensive cache misses (a date's features, predictions, whole-universe
    rankings), so N simultaneous requests for an uncached date cost one computation.
    ``computed`` counts the computations run, per key prefix (before the first ``:``).
    """

    class _Call:
        __slots__ = ("done", "error", "value")

        def __init__(self) -> None:
            self.done = threading.Event()
            self.value: Any = None
            self.error: BaseException | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, SingleFlight._Call] = {}
        self.computed: dict[str, int] = {}
        self.shared = 0

    def do(self, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, run once for all the callers of ``key`` that arrive while it runs."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = SingleFlight._Call()
            else:
                self.shared += 1
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return cast(T, call.value)
        try:
            call.value = fn()
            return cast(T, call.value)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
                kind = key.split(":", 1)[0]
                self.computed[kind] = self.computed.get(kind, 0) + 1
            call.done.set()


@dataclass(frozen=True)
class _Local:
    """A process-local copy of a cached value: ``fresh_until`` (monotonic seconds) is when a
    Redis-backed copy must be checked against Redis again (another process may have changed it)."""

    value: Any
    fresh_until: float


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

    def delete(self, key: str) -> None:
        """Drop ``key`` (no error when absent)."""
        with self._lock:
            self._data.pop(key, None)

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
        How long Redis is left alone after an error before it is tried again (when no
        ``breaker`` is given).
    l1_ttl_s : float
        With Redis, values read or written are also kept in process memory, and answer without
        asking Redis for this long, so hot keys (a date's features, its predictions) are not
        unpickled on every request; another process's update is seen at most this late. After
        it the copy is refreshed from Redis, and still answers while Redis is down (until the
        value's own TTL ends). 0: every read asks Redis (the copy serves outages only).
    breaker : RedisBreaker, optional
        Shared with other Redis users (the rate limiter); default a new one.

    Notes
    -----
    ``stats()`` reports hits, misses, Redis errors and the backend in use.
    """

    def __init__(self, url: str | None, prefix: str = "vfr", retry_after_s: float = RETRY_AFTER_S,
                 l1_ttl_s: float = 5.0, breaker: RedisBreaker | None = None) -> None:
        self.url = url
        self.l1_ttl_s = l1_ttl_s
        self.prefix = prefix
        self.breaker = breaker or RedisBreaker(retry_after_s)
        self.memory = MemoryTTL()
        self._redis: redis.Redis | None = None
        self.hits = self.misses = self.errors = 0
        if url:
            import redis

            self._redis = redis.Redis.from_url(url, **redis_options())

    @property
    def retry_after_s(self) -> float:
        return self.breaker.retry_after_s

    # -- backend selection ------------------------------------------------------------
    def _client(self) -> redis.Redis | None:
        """The Redis client when it is configured and the breaker lets this call through, else None."""
        return self._redis if self._redis is not None and self.breaker.allow() else None

    def _redis_failed(self, exc: Exception) -> None:
        self.errors += 1
        self.breaker.failure(exc, "cache")

    @property
    def backend(self) -> str:
        """``redis``, ``memory`` (not configured) or ``memory (redis down)`` (breaker open)."""
        if self._redis is None:
            return "memory"
        return "memory (redis down)" if self.breaker.down else "redis"

    def check(self) -> str:
        """:attr:`backend` after asking Redis (one ``PING`` of at most :data:`REDIS_TIMEOUT_S` when
        the breaker lets it through), so an outage is seen even while every request is answered
        from the process-local copies; used by ``/api/health``."""
        if self._redis is not None and self.breaker.allow():
            try:
                self._redis.ping()
                self.breaker.success()
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)
        return self.backend

    # -- API ------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Cached value of ``key`` or None.

        With Redis, a local copy younger than ``l1_ttl_s`` answers at once; an older one is
        refreshed from Redis, and answers only when Redis cannot be reached (until the value's
        own TTL ends): a Redis outage does not turn every hot key into a miss.
        """
        local = self.memory.get(key, _MISSING)
        if isinstance(local, _Local) and (self._redis is None or local.fresh_until > time.monotonic()):
            self.hits += 1
            return local.value
        value: Any = _MISSING
        client = self._client()
        if client is not None:
            try:
                pipe = client.pipeline(transaction=False)  # one round trip: the value and its TTL
                pipe.get(f"{self.prefix}:{key}")
                pipe.pttl(f"{self.prefix}:{key}")
                raw, pttl = pipe.execute()
                self.breaker.success()
                if raw is None:  # expired or invalidated in Redis: the local copy is out of date too
                    self.memory.delete(key)
                else:  # the client is built without decode_responses: Redis values come back as bytes
                    value = pickle.loads(cast(bytes, raw))
                    ttl_s = pttl / 1000 if isinstance(pttl, int) and pttl > 0 else self.l1_ttl_s
                    self.memory.set(key, _Local(value, time.monotonic() + self.l1_ttl_s), ttl_s)
            except Exception as exc:  # noqa: BLE001 - any Redis failure falls back to the local copy
                self._redis_failed(exc)
                value = local.value if isinstance(local, _Local) else _MISSING
        elif isinstance(local, _Local):  # breaker open: Redis is down, the local copy answers
            value = local.value
        if value is _MISSING:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (no-op when ``ttl`` <= 0); a local
        copy is kept for the same ``ttl`` (fresh for ``l1_ttl_s`` when Redis holds the value)."""
        if ttl <= 0:
            return
        client = self._client()
        if client is not None:
            try:
                client.set(f"{self.prefix}:{key}", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL),
                          px=max(1, int(ttl * 1000)))
                self.breaker.success()
                self.memory.set(key, _Local(value, time.monotonic() + self.l1_ttl_s), ttl)
                return
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)
        self.memory.set(key, _Local(value, float("inf")), ttl)

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
            ok = bool(self._redis.ping())
            self.breaker.success()
            return ok
        except Exception as exc:  # noqa: BLE001
            self._redis_failed(exc)
            return False

    def stats(self) -> dict[str, Any]:
        """Hits, misses, hit ratio, Redis errors (of every user of the breaker), backend and in-memory entries."""
        total = self.hits + self.misses
        return {"backend": self.backend, "hits": self.hits, "misses": self.misses,
                "hit_ratio": round(self.hits / total, 4) if total else None, "redis_errors": self.breaker.failures,
                "memory_entries": len(self.memory)}
