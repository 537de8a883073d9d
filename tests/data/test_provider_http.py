"""The provider HTTP client against a real local HTTP server: retries with backoff and
Retry-After, the expiring cache (no key stored, a rejected payload not kept), the rate limit
spent only on network requests, and clear errors (issue 19)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from vfr.data.providers import JsonClient, ProviderError, RateLimiter


def client(tmp_path, **kw) -> JsonClient:
    kw.setdefault("backoff", 0.05)
    return JsonClient("t", RateLimiter(100, 1.0), cache_dir=tmp_path, timeout=5.0, **kw)


def test_transient_failures_are_retried_with_backoff_then_served(http, tmp_path):
    http.answer("/q", (503, {"error": "busy"}), (502, b"bad gateway"), (200, {"ok": 1}))
    c = client(tmp_path, backoff=0.1)
    t = time.monotonic()
    assert c.get_json(f"{http.url}/q", {"symbol": "IBM"}) == {"ok": 1}
    assert http.hits("/q") == 3
    assert time.monotonic() - t >= 0.1 + 0.2 - 0.02  # waited 0.1 s, then 0.2 s


def test_retry_after_is_honoured_and_giving_up_says_how_often(http, tmp_path):
    http.answer("/q", (429, {"error": "slow down"}, {"Retry-After": "0.4"}), (200, {"ok": 2}))
    t = time.monotonic()
    assert client(tmp_path).get_json(f"{http.url}/q") == {"ok": 2}
    assert time.monotonic() - t >= 0.4 - 0.02  # the server's hint, not the 0.05 s backoff
    http.answer("/down", (503, {"error": "maintenance"}))
    with pytest.raises(ProviderError, match=r"HTTP 503 from .*/down.*gave up after 3 attempts"):
        client(tmp_path / "b", retries=3).get_json(f"{http.url}/down")
    assert http.hits("/down") == 3


def test_a_client_error_is_not_retried(http, tmp_path):
    http.answer("/missing", (404, {"error": "unknown symbol"}))
    with pytest.raises(ProviderError, match="HTTP 404 .*unknown symbol"):
        client(tmp_path).get_json(f"{http.url}/missing")
    assert http.hits("/missing") == 1


def test_cache_serves_until_it_expires_and_never_stores_the_key(http, tmp_path):
    http.answer("/obs", (200, {"v": 1}), (200, {"v": 2}))
    c = client(tmp_path, expire_after=0.6)
    assert c.get_json(f"{http.url}/obs", {"series_id": "GS10", "api_key": "SECRET-1"}) == {"v": 1}
    # another key, same request: served from the cache (the key is not part of the cache key)
    assert c.get_json(f"{http.url}/obs", {"series_id": "GS10", "api_key": "SECRET-2"}) == {"v": 1}
    assert http.hits("/obs") == 1
    assert http.seen[0][1]["api_key"] == ["SECRET-1"]  # the server did get the key
    time.sleep(0.7)
    assert c.get_json(f"{http.url}/obs", {"series_id": "GS10", "api_key": "SECRET-2"}) == {"v": 2}
    assert http.hits("/obs") == 2
    c.close()
    stored = (tmp_path / "t.sqlite").read_bytes()
    assert b"SECRET" not in stored
    with sqlite3.connect(tmp_path / "t.sqlite") as db:  # a real cache file with the responses in it
        assert db.execute("select count(*) from responses").fetchone()[0] >= 1


def test_a_rejected_payload_is_not_cached(http, tmp_path):
    http.answer("/av", (200, {"Note": "rate limit reached"}), (200, {"symbol": "IBM"}))

    def check(payload):
        if "Note" in payload:
            raise ProviderError(f"limit: {payload['Note']}")

    c = client(tmp_path)
    with pytest.raises(ProviderError, match="rate limit reached"):
        c.get_json(f"{http.url}/av", {"function": "EARNINGS"}, check=check)
    assert c.get_json(f"{http.url}/av", {"function": "EARNINGS"}, check=check) == {"symbol": "IBM"}
    assert http.hits("/av") == 2


def test_cache_hits_do_not_spend_the_rate_limit(http, tmp_path):
    http.answer("/r", (200, {"ok": True}))
    c = JsonClient("t", RateLimiter(2, 0.5), cache_dir=tmp_path, timeout=5.0)
    t = time.monotonic()
    for _ in range(6):
        c.get_json(f"{http.url}/r", {"s": "A"})
    assert time.monotonic() - t < 0.4 and http.hits("/r") == 1
    for s in "BCD":  # three network requests at 2 per 0.5 s: one wait
        c.get_json(f"{http.url}/r", {"s": s})
    assert time.monotonic() - t >= 0.5 - 0.02


def test_not_json_is_a_clear_error(http, tmp_path):
    http.answer("/html", (200, b"<html>maintenance</html>"))
    with pytest.raises(ProviderError, match="not JSON: .*maintenance"):
        client(tmp_path).get_json(f"{http.url}/html")
