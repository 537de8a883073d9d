"""HTTP plumbing shared by the provider adapters: rate limit, response cache, clear errors.

None of the adapters has been run against a live service in this project (the development
machines have no internet); their parsing is tested on hand-written payloads in each API's
documented format (``tests/data/fixtures/providers``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any


class ProviderError(RuntimeError):
    """A provider could not be used: missing key, network failure, or an error payload."""


class RateLimiter:
    """At most ``calls`` requests per ``period`` seconds (sliding window), thread-safe.

    Parameters
    ----------
    calls : int
        Requests allowed per window (e.g. FMP 300/min, FRED 120/min, SEC 10/s).
    period : float
        Window length in seconds.
    """

    def __init__(self, calls: int, period: float) -> None:
        self.calls, self.period = int(calls), float(period)
        self._stamps: list[float] = []
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a request is allowed; return the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._stamps = [t for t in self._stamps if now - t < self.period]
                if len(self._stamps) < self.calls:
                    self._stamps.append(now)
                    return slept
                delay = self.period - (now - self._stamps[0])
            time.sleep(max(delay, 0.001))
            slept += max(delay, 0.001)


class JsonClient:
    """GET JSON with a rate limit and an on-disk cache keyed by URL and parameters.

    The cache key leaves out secret parameters (``apikey``, ``api_key``), so a cached response
    never stores the key and survives a key change.

    Parameters
    ----------
    name : str
        Provider name used in messages and as the cache sub-folder.
    limiter : RateLimiter
        The provider's documented limit.
    cache_dir : str or Path, optional
        Cache folder (default ``$VFR_HOME/cache/providers`` or ``~/.vfr/cache/providers``);
        ``None`` with ``use_cache=False`` disables caching.
    headers : dict, optional
        Extra request headers (SEC requires a ``User-Agent`` with a contact address).
    timeout : float
        Seconds per request.
    """

    SECRET_PARAMS = ("apikey", "api_key")

    def __init__(self, name: str, limiter: RateLimiter, *, cache_dir: str | Path | None = None,
                 use_cache: bool = True, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.name, self.limiter, self.timeout = name, limiter, timeout
        self.headers = dict(headers or {})
        home = Path(os.environ.get("VFR_HOME", Path.home() / ".vfr"))
        base = Path(cache_dir) if cache_dir is not None else home / "cache" / "providers"
        self.cache_dir = base / name if use_cache else None

    def _cache_path(self, url: str, params: dict[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        public = {k: v for k, v in sorted(params.items()) if k not in self.SECRET_PARAMS}
        digest = hashlib.sha256(json.dumps([url, public], default=str).encode()).hexdigest()[:32]
        return self.cache_dir / f"{digest}.json"

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """The decoded JSON of ``GET url?params`` (from the cache when present).

        Raises
        ------
        ProviderError
            On a network error, an HTTP status >= 400 or a body that is not JSON.
        """
        params = dict(params or {})
        path = self._cache_path(url, params)
        if path is not None and path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        import requests

        self.limiter.wait()
        try:
            resp = requests.get(url, params=params, headers=self.headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"{self.name}: request to {url} failed ({exc.__class__.__name__}: "
                                f"{exc}); is the network reachable?") from exc
        if resp.status_code >= 400:
            raise ProviderError(f"{self.name}: HTTP {resp.status_code} from {url}: {resp.text[:200]}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise ProviderError(f"{self.name}: response from {url} is not JSON: "
                                f"{resp.text[:200]!r}") from exc
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data), encoding="utf-8")
        return data


def require_key(name: str, key: str | None, env: str) -> str:
    """The API key given or from the environment variable ``env``.

    Raises
    ------
    ProviderError
        With a message naming ``env`` when no key is available.
    """
    key = key or os.environ.get(env)
    if not key:
        raise ProviderError(f"{name} needs an API key: pass api_key=... or set {env}")
    return key
