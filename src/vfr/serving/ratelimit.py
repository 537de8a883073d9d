"""Rate limits per tier with the ``limits`` library (Redis-backed when configured).

When Redis fails, the limiter switches to process memory for a while rather than failing the
request (each process then counts on its own).
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
    """

    def __init__(self, settings: Settings) -> None:
        self.items = {"anonymous": parse(settings.rate_limit_anonymous), "free": parse(settings.rate_limit_free),
                      "pro": parse(settings.rate_limit_pro), "admin": parse(settings.rate_limit_admin)}
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared = None
        self._down_until = 0.0
        if settings.cache_url and settings.cache_url.startswith(("redis://", "rediss://")):
            storage = storage_from_string(settings.cache_url, key_prefix=f"{settings.cache_prefix}:limits",
                                          socket_timeout=0.25, socket_connect_timeout=0.25)
            self._shared = SlidingWindowCounterRateLimiter(storage)

    @property
    def backend(self) -> str:
        if self._shared is None:
            return "memory"
        return "redis" if time.monotonic() >= self._down_until else "memory (redis down)"

    def hit(self, tier: str, key: str) -> Decision:
        """Count one call of ``key`` in ``tier``; say whether it is allowed."""
        item = self.items.get(tier, self.items["anonymous"])
        limiter = self._memory
        if self._shared is not None and time.monotonic() >= self._down_until:
            limiter = self._shared
        try:
            return self._decide(limiter, item, tier, key)
        except Exception as exc:  # noqa: BLE001 - Redis down: count in memory instead
            if limiter is self._memory:
                raise
            log.warning("rate limits: Redis unavailable (%s); counting in process memory", exc.__class__.__name__)
            self._down_until = time.monotonic() + 5.0
            return self._decide(self._memory, item, tier, key)

    @staticmethod
    def _decide(limiter: SlidingWindowCounterRateLimiter, item, tier: str, key: str) -> Decision:
        allowed = limiter.hit(item, tier, key)
        stats = limiter.get_window_stats(item, tier, key)
        retry = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), retry)
