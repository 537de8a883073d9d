"""HTTP plumbing shared by the provider adapters: rate limit, retries, expiring response cache, clear errors.

None of the adapters has been run against a live service in this project (the development
machines have no internet); their parsing is tested on hand-written payloads in each API's
documented format (``tests/data/fixtures/providers``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
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


#: HTTP statuses worth another try: rate limited, or the server's transient failure.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure another attempt may not repeat; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


class JsonClient:
    """GET JSON with a rate limit, retries with backoff and an expiring on-disk cache.

    - **Cache**: ``requests-cache`` (SQLite, one file per provider: ``<cache_dir>/<name>.sqlite``),
      responses kept ``expire_after`` seconds. Secret parameters (``apikey``, ``api_key``) are
      left out of the cache key and redacted from what is stored, so the cache never holds a key
      and survives a key change. A payload the adapter rejects (``check``) is dropped from the
      cache, so an error answered with HTTP 200 is not served again.
    - **Retries**: ``tenacity``; a connection error, a timeout or HTTP 429/500/502/503/504 is tried
      again up to ``retries`` attempts in all, waiting exponentially (``backoff`` x 2^n seconds,
      at most 60) or the server's ``Retry-After`` when it says longer. Other HTTP errors fail at once.
    - **Rate limit**: every request that goes to the network (not a cache hit) first waits on
      ``limiter``.

    Parameters
    ----------
    name : str
        Provider name used in messages and as the cache file's name.
    limiter : RateLimiter
        The provider's documented limit.
    cache_dir : str or Path, optional
        Cache folder (default ``$VFR_HOME/cache/providers`` or ``~/.vfr/cache/providers``).
    use_cache : bool
        False: every call goes to the network.
    headers : dict, optional
        Extra request headers (SEC requires a ``User-Agent`` with a contact address).
    timeout : float
        Seconds per request.
    expire_after : float
        Seconds a cached response is served (default 12 hours).
    retries : int
        Attempts in all for a transient failure (>= 1).
    backoff : float
        First wait between attempts, seconds.
    """

    SECRET_PARAMS = ("apikey", "api_key")

    def __init__(self, name: str, limiter: RateLimiter, *, cache_dir: str | Path | None = None,
                 use_cache: bool = True, headers: dict[str, str] | None = None,
                 timeout: float = 30.0, expire_after: float = 12 * 3600.0, retries: int = 4,
                 backoff: float = 1.0) -> None:
        if retries < 1:
            raise ValueError(f"{name}: retries must be >= 1, got {retries}")
        self.name, self.limiter, self.timeout = name, limiter, timeout
        self.headers = dict(headers or {})
        self.expire_after, self.retries, self.backoff = float(expire_after), int(retries), float(backoff)
        home = Path(os.environ.get("VFR_HOME", Path.home() / ".vfr"))
        base = Path(cache_dir) if cache_dir is not None else home / "cache" / "providers"
        self.cache_path = base / f"{name}.sqlite" if use_cache else None
        self._session: Any = None

    @property
    def session(self) -> Any:
        """The ``requests`` session (a ``requests_cache.CachedSession`` when caching), made on first use."""
        if self._session is None:
            if self.cache_path is None:
                import requests

                self._session = requests.Session()
            else:
                from datetime import timedelta

                from requests_cache import CachedSession

                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                self._session = CachedSession(str(self.cache_path), backend="sqlite",
                                              expire_after=timedelta(seconds=self.expire_after),
                                              allowable_codes=(200,),
                                              ignored_parameters=list(self.SECRET_PARAMS))
            self._session.headers.update(self.headers)
        return self._session

    def close(self) -> None:
        """Close the session and its cache file."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _wait(self, state: Any) -> float:
        exp = min(self.backoff * 2 ** (state.attempt_number - 1), 60.0)
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = getattr(exc, "retry_after", None)
        return min(max(exp, hint), 60.0) if hint is not None else exp

    def _get_once(self, url: str, params: dict[str, Any]) -> Any:
        import requests

        session = self.session
        if self.cache_path is not None:
            cached = session.get(url, params=params, timeout=self.timeout, only_if_cached=True)
            if cached.status_code == 200:
                return cached
        self.limiter.wait()
        try:
            resp = session.get(url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"{self.name}: request to {url} failed ({exc.__class__.__name__}: {exc}); "
                             "is the network reachable?") from exc
        except requests.RequestException as exc:
            raise ProviderError(f"{self.name}: request to {url} failed ({exc.__class__.__name__}: {exc})") from exc
        if resp.status_code in TRANSIENT_STATUS:
            raise _Transient(f"{self.name}: HTTP {resp.status_code} from {url}: {resp.text[:200]}",
                             _retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise ProviderError(f"{self.name}: HTTP {resp.status_code} from {url}: {resp.text[:200]}")
        return resp

    def get_json(self, url: str, params: dict[str, Any] | None = None,
                 check: Callable[[Any], None] | None = None) -> Any:
        """The decoded JSON of ``GET url?params`` (from the cache while it is fresh).

        ``check`` (optional) validates the payload and raises :class:`ProviderError` on an error
        payload; the response is then removed from the cache before the error propagates.

        Raises
        ------
        ProviderError
            After the last attempt of a transient failure (the message says how many), at once on
            another HTTP status >= 400, or on a body that is not JSON.
        """
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

        params = dict(params or {})
        try:
            for attempt in Retrying(stop=stop_after_attempt(self.retries), wait=self._wait,
                                    retry=retry_if_exception_type(_Transient), reraise=False):
                with attempt:
                    resp = self._get_once(url, params)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise ProviderError(f"{last} (gave up after {self.retries} attempts)") from last
        try:
            data = resp.json()
        except ValueError as exc:
            self._forget(resp)
            raise ProviderError(f"{self.name}: response from {url} is not JSON: {resp.text[:200]!r}") from exc
        if check is not None:
            try:
                check(data)
            except ProviderError:
                self._forget(resp)
                raise
        return data

    def _forget(self, resp: Any) -> None:
        key = getattr(resp, "cache_key", None)
        if self.cache_path is not None and key:
            self.session.cache.delete(key, vacuum=False)


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
