"""Rate limits per tier with the ``limits`` library (Redis-backed when configured).

When Redis fails, the limiter switches to process memory rather than failing the request (each
process then counts on its own) until the shared :class:`~vfr.serving.cache.RedisBreaker` lets a
probe through and Redis answers again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from vfr.config import Settings
from vfr.serving.cache import RedisBreaker, redis_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """Outcome of one hit: allowed, the limit, remaining calls and seconds until a retry helps."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class TierLimiter:
    """Sliding-window-counter limits per tier, keyed by user (or client address when anonymous).

    The sliding window counter is O(1) per call in memory and in Redis (a moving window keeps one
    entry per call, which costs O(calls in the window) on every hit at high limits).

    Parameters
    ----------
    settings : Settings
        ``rate_limit_<tier>`` strings (``"60/minute"``), ``cache_url`` and ``cache_prefix``.
    breaker : RedisBreaker, optional
        Shared with the caches (``engine.cache.breaker``), so one Redis failure moves both to
        process memory; default a breaker of its own.
    """

    def __init__(self, settings: Settings, breaker: RedisBreaker | None = None) -> None:
        self.items = {"anonymous": parse(settings.rate_limit_anonymous), "free": parse(settings.rate_limit_free),
                      "pro": parse(settings.rate_limit_pro), "admin": parse(settings.rate_limit_admin)}
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared = None
        self.breaker = breaker or RedisBreaker()
        if settings.cache_url and settings.cache_url.startswith(("redis://", "rediss://")):
            storage = storage_from_string(settings.cache_url, key_prefix=f"{settings.cache_prefix}:limits",
                                          **redis_options())
            self._shared = SlidingWindowCounterRateLimiter(storage)

    @property
    def backend(self) -> str:
        if self._shared is None:
            return "memory"
        return "memory (redis down)" if self.breaker.down else "redis"

    def hit(self, tier: str, key: str) -> Decision:
        """Count one call of ``key`` in ``tier``; say whether it is allowed."""
        item = self.items.get(tier, self.items["anonymous"])
        limiter = self._memory
        if self._shared is not None and self.breaker.allow():
            limiter = self._shared
        try:
            decision = self._decide(limiter, item, tier, key)
        except Exception as exc:  # noqa: BLE001 - Redis down: count in memory instead
            if limiter is self._memory:
                raise
            self.breaker.failure(exc, "rate limits")
            return self._decide(self._memory, item, tier, key)
        if limiter is not self._memory:
            self.breaker.success()
        return decision

    @staticmethod
    def _decide(limiter: SlidingWindowCounterRateLimiter, item, tier: str, key: str) -> Decision:
        allowed = limiter.hit(item, tier, key)
        stats = limiter.get_window_stats(item, tier, key)
        retry = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), retry)
