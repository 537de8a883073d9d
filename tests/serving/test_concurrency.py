"""Concurrency at the HTTP boundary (issue 16), against a real uvicorn server: many anonymous
callers asking for the same uncached date at once cost one computation (single-flight), seen
in the server's own Prometheus counters, and all get the same answer."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.serving.conftest import Built, client_for, make_settings
from tests.serving.test_metrics import scrape
from vfr.data import MarketStore

N = 16


def _hammer(base: str, path: str, params: dict, n: int) -> list[httpx.Response]:
    """``n`` GETs released at the same instant from ``n`` threads (each its own connection)."""
    barrier = threading.Barrier(n)
    out: list[httpx.Response | None] = [None] * n

    def one(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            barrier.wait()
            out[i] = c.get(path, params=params)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def test_concurrent_requests_for_an_uncached_date_compute_it_once(built: Built, tmp_path: Path) -> None:
    with MarketStore(built.store_url) as store:
        dates = store.read_table("features", columns=["date"])["date"].drop_duplicates().sort_values()
    day, other = str(dates.iloc[-30].date()), str(dates.iloc[-40].date())  # neither is the (warm) latest
    settings = make_settings(built, tmp_path)
    with client_for(settings) as client:
        base = str(client.base_url)
        before = scrape(client)
        assert before.value("vfr_singleflight_computations_total", kind="feat") in (None, 0.0)

        responses = _hammer(base, "/api/stocks/select", {"date": day, "include_ml": True}, N)
        assert [r.status_code for r in responses] == [200] * N
        bodies = [r.json() for r in responses]
        for b in bodies:  # the same answer (only each request's own ML latency differs)
            b["ml"].pop("latency_ms")
        assert all(b == bodies[0] for b in bodies) and bodies[0]["date"] == day and bodies[0]["ml"]["status"] == "ok"

        after = scrape(client)
        # one store read of the date's features, one prediction, one whole-universe ranking
        for kind in ("feat", "universe", "pred", "scored"):
            assert after.value("vfr_singleflight_computations_total", kind=kind) == 1.0, kind
        # an independent witness: the model scored the date once (inference histogram count)
        inferences = sum(v for (name, _), v in after.samples.items()
                         if name == "vfr_ml_inference_duration_seconds_count")
        assert inferences == 1.0
        assert (after.value("vfr_singleflight_shared_total") or 0) >= 1  # some callers waited, none recomputed

        # the classic path of another date: also one ranking for all
        responses = _hammer(base, "/api/stocks/select", {"date": other}, N)
        assert [r.status_code for r in responses] == [200] * N
        assert len({r.text for r in responses}) == 1
        again = scrape(client)
        assert again.value("vfr_singleflight_computations_total", kind="feat") == 2.0
        assert again.value("vfr_singleflight_computations_total", kind="classic") == 1.0

        # an error (a date without features) reaches every waiter as the same 404, and is not cached
        responses = _hammer(base, "/api/stocks/select", {"date": "2001-01-02"}, 8)
        assert {r.status_code for r in responses} == {404}
