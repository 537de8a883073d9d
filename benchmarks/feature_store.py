"""Feature store latency: point-in-time retrieval (offline) and one-vector reads (online).

One command:  python benchmarks/feature_store.py [--no-write] [--pg URL] [--redis URL]

Writes the technical features of every S&P 500 stock of ``../shared/data`` for 2018-2019
(21 features + their 21 cross-sectional ranks = 42 features, known at each day's close) into
an offline store (DuckDB file in a temporary folder; PostgreSQL too when ``--pg`` is given),
then times:

- ``get_historical_features`` for 25 random symbols x all 42 features at the close of one
  random date (target <= 20 ms), 200 repetitions;
- ``OnlineFeatureStore.get`` of one vector (target <= 2 ms), 2,000 reads, in Redis (when
  ``--redis`` answers, default redis://127.0.0.1:6379/0) and in process memory.

Appends a table with the machine to docs/benchmarks.md. Exits 0, writing nothing, when the
data is absent.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PRICES, append_results, machine

PIT_TARGET_MS = 20.0
ONLINE_TARGET_MS = 2.0


def _stats(samples: list[float]) -> tuple[float, float, float]:
    a = np.asarray(samples) * 1000.0
    return float(np.median(a)), float(np.percentile(a, 95)), float(a.max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--pg", default=None, help="also time a PostgreSQL store at this URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if not PRICES.exists():
        print(f"development data not found at {PRICES}; nothing measured")
        return 0
    from vfr.data import MarketStore, adjust_prices
    from vfr.features import build_features
    from vfr.featurestore import (
        FeatureSpec,
        FeatureView,
        OfflineFeatureStore,
        OnlineFeatureStore,
        close_timestamp,
        materialize,
    )

    raw = pd.read_parquet(PRICES, filters=[("date", ">=", pd.Timestamp("2017-01-01"))])
    feats = build_features(adjust_prices(raw.reset_index(drop=True)))
    feats = feats[feats["date"] >= pd.Timestamp("2018-01-01")].reset_index(drop=True)
    names = [c for c in feats.columns if c not in ("symbol", "date")]
    view = FeatureView("bench", tuple(FeatureSpec(n) for n in names), group="technical",
                       source="vfr.features.build_features")
    feats["known_at"] = close_timestamp(feats["date"]).to_numpy()
    rng = np.random.default_rng(0)
    symbols = feats["symbol"].unique()
    dates = feats["date"].unique()
    rows: list[tuple[str, str, float, float, float, float]] = []

    urls = []
    tmp = tempfile.TemporaryDirectory()
    urls.append(("DuckDB file", f"duckdb:///{Path(tmp.name) / 'fs.duckdb'}"))
    schema = None
    if args.pg:  # a private schema, dropped at the end
        import sqlalchemy as sa

        schema = f"vfr_bench_{uuid.uuid4().hex[:10]}"
        pg_engine = sa.create_engine(args.pg)
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

        def _drop_schema() -> None:  # also on a failed run
            with pg_engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        atexit.register(_drop_schema)
        sep = "&" if "?" in args.pg else "?"
        urls.append(("PostgreSQL", f"{args.pg}{sep}options=-csearch_path%3D{schema}"))
    offline_for_online = None
    stores = []
    for label, url in urls:
        store = MarketStore(url)
        stores.append(store)
        off = OfflineFeatureStore(store)
        off.register(view)
        t = time.perf_counter()
        rep = off.write("bench", feats, source="bench")
        write_s = time.perf_counter() - t
        print(f"{label}: wrote {rep.written:,} vectors x {len(names)} features in {write_s:.1f} s")
        for cached in (False, True):
            off.cache = cached
            samples = []
            for i in range(220):
                day = pd.Timestamp(dates[rng.integers(300, len(dates))])
                req = pd.DataFrame({"symbol": rng.choice(symbols, 25, replace=False),
                                    "event_timestamp": close_timestamp(pd.Series([day]))[0]})
                t = time.perf_counter()
                got = off.get_historical_features(req, "bench")
                if i >= 20:  # warm-up (and the cache's first load)
                    samples.append(time.perf_counter() - t)
                assert (got["known_at"].dropna() <= got["event_timestamp"].iloc[0]).all()
            med, p95, mx = _stats(samples)
            how = "instance cache" if cached else "one SQL query"
            op = (f"PIT retrieval, 25 symbols x {len(names)} features, one date "
                  f"({label}, {how}; {rep.written:,} vectors stored)")
            rows.append((op, "200 calls", med, p95, mx, PIT_TARGET_MS))
        if offline_for_online is None:
            offline_for_online = off

    for label, url in (("Redis", args.redis), ("process memory", None)):
        online = OnlineFeatureStore(url, prefix=f"vfr:bench:{uuid.uuid4().hex}")
        if url is not None and online.backend != "redis":
            print(f"Redis not reachable at {url}: {online.fallback_reason}; skipped")
            continue
        day = pd.Timestamp(dates[-1]) + pd.Timedelta(days=1)
        n = materialize(offline_for_online, online, "bench", list(symbols), day)
        samples = []
        for i in range(2200):
            s = symbols[rng.integers(0, len(symbols))]
            t = time.perf_counter()
            vec = online.get("bench", s)
            if i >= 200:
                samples.append(time.perf_counter() - t)
            assert vec is not None
        med, p95, mx = _stats(samples)
        rows.append((f"online read of one vector ({label}, {len(names)} features, {n} symbols)",
                     "2,000 reads", med, p95, mx, ONLINE_TARGET_MS))
        online.delete_all()

    table = ["| operation | sample | median ms | p95 ms | max ms | target ms |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    table += [f"| {op} | {n} | {m:.2f} | {p:.2f} | {x:.2f} | <= {tg:.0f} |"
              for op, n, m, p, x, tg in rows]
    text = "\n".join([
        "", f"## Feature store latency ({dt.date.today().isoformat()})", "",
        f"Machine: {machine()}. Command: `python benchmarks/feature_store.py"
        + (" --pg ..." if args.pg else "") + "`. Data: technical features (21 + 21 ranks) of "
        "every S&P 500 stock, 2018-2019, one vector per stock and day known at its close.", "",
        *table, ""])
    print(text)
    if not args.no_write:
        append_results(text)
    for store in stores:
        store.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
