"""Offline store (DuckDB and real PostgreSQL): versions, lineage, validated writes and
point-in-time retrieval; online store: TTL on real Redis, fallback to process memory."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from vfr.data import MarketStore
from vfr.featurestore import (
    FeatureSpec,
    FeatureValidationError,
    FeatureView,
    OfflineFeatureStore,
    OnlineFeatureStore,
    close_timestamp,
    materialize,
    validate_vectors,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
VIEW = FeatureView("tech", (FeatureSpec("ret_5d", -1, 10), FeatureSpec("rsi_14", 0, 100),
                            FeatureSpec("vol_20d_ann", 0, None)),
                   descriptions={"ret_5d": "5-day return"}, group="technical",
                   source="vfr.features.build_features")


@pytest.fixture(params=["duckdb", "duckdb-cached",
                        pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("postgres-cached", marks=pytest.mark.postgres)])
def offline(request, tmp_path):
    url = (f"duckdb:///{tmp_path / 'fs.duckdb'}" if request.param.startswith("duckdb")
           else request.getfixturevalue("pg_url"))
    store = MarketStore(url)
    yield OfflineFeatureStore(store, cache=request.param.endswith("cached"))
    store.close()


def _history(seed: int = 0, n_days: int = 40, symbols=("AAA", "BBB", "CCC")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-02", periods=n_days)
    rows = []
    for s in symbols:
        for d in dates:
            rows.append({"symbol": s, "date": d, "ret_5d": rng.normal(0, 0.03),
                         "rsi_14": rng.uniform(0, 100), "vol_20d_ann": rng.uniform(0.1, 0.5)})
    frame = pd.DataFrame(rows)
    # random publication lag: 0 to 3 days after the close
    lag = pd.to_timedelta(rng.integers(0, 4 * 24, len(frame)), unit="h")
    frame["known_at"] = close_timestamp(frame["date"]).to_numpy() + lag.to_numpy()
    return frame


def test_definitions_are_versioned(offline):
    assert offline.register(VIEW) == 1
    assert offline.register(VIEW) == 1  # unchanged -> same version
    changed = FeatureView("tech", (*VIEW.specs[:2], FeatureSpec("vol_20d_ann", 0, 5)),
                          descriptions=VIEW.descriptions, group="technical", source=VIEW.source)
    assert offline.register(changed) == 2
    assert offline.register(VIEW) == 1  # an earlier definition keeps its version
    defs = offline.definitions()
    assert sorted(defs["version"].unique()) == [1, 2]
    assert set(defs.loc[defs["version"] == 2, "feature"]) == set(VIEW.features)
    row = defs[(defs["version"] == 2) & (defs["feature"] == "vol_20d_ann")].iloc[0]
    assert row["max"] == 5.0 and row["feature_group"] == "technical"


def test_write_validates_and_records_lineage(offline):
    offline.register(VIEW)
    frame = _history(n_days=5)
    frame.loc[0, "rsi_14"] = 150.0  # range
    frame.loc[1, "ret_5d"] = np.inf  # inf
    frame.loc[2, "known_at"] = frame.loc[2, "date"] - pd.Timedelta(days=2)  # known before day
    rep = offline.write("tech", frame, source="alphavantage")
    assert rep.rejected == 3 and rep.written == len(frame) - 3
    assert rep.rejected_counts == {"range": 1, "inf": 1, "key": 1}
    lin = offline.lineage("tech")
    assert len(lin) == 1
    r = lin.iloc[0]
    assert r["batch_id"] == rep.batch_id and r["source"] == "alphavantage"
    assert r["code_version"].startswith("vfr ") and len(r["data_fingerprint"]) == 64
    assert r["n_rows"] == rep.written and r["n_rejected"] == 3
    assert r["definition_version"] == 1
    # the same data again has the same fingerprint, other data another one
    rep2 = offline.write("tech", frame, source="alphavantage")
    rep3 = offline.write("tech", _history(seed=1, n_days=5), source="alphavantage")
    fp = offline.lineage("tech").set_index("batch_id")["data_fingerprint"]
    assert fp[rep.batch_id] == fp[rep2.batch_id] != fp[rep3.batch_id]
    with pytest.raises(FeatureValidationError):
        offline.write("tech", frame.drop(columns="rsi_14"), source="x")
    with pytest.raises(KeyError):
        offline.write("unknown", frame, source="x")


def test_point_in_time_never_returns_a_value_known_later(offline):
    offline.register(VIEW)
    hist = _history(n_days=40)
    # a later revision of some values, known a week after
    rev = hist.sample(30, random_state=1).copy()
    rev["ret_5d"] += 1.0
    rev["known_at"] += pd.Timedelta(days=7)
    offline.write("tech", hist, source="a")
    probe = pd.DataFrame({"symbol": ["AAA"], "event_timestamp": [pd.Timestamp("2024-02-20")]})
    before = offline.get_historical_features(probe, "tech")  # fills the cache when enabled
    offline.write("tech", rev, source="a")
    allv = pd.concat([hist, rev], ignore_index=True)
    assert before["known_at"].notna().all()
    rng = np.random.default_rng(3)
    ts = pd.Timestamp("2024-01-02") + pd.to_timedelta(rng.integers(0, 70 * 24 * 60, 200),
                                                      unit="min")
    rows = pd.DataFrame({"symbol": rng.choice(["AAA", "BBB", "CCC", "ZZZ"], 200),
                         "event_timestamp": ts})
    got = offline.get_historical_features(rows, "tech")
    assert list(got["symbol"]) == list(rows["symbol"])  # order kept
    assert (got["known_at"].dropna() <= got.loc[got["known_at"].notna(), "event_timestamp"]).all()
    for i, row in rows.iterrows():
        cand = allv[(allv["symbol"] == row["symbol"])
                    & (allv["known_at"] <= row["event_timestamp"])
                    & (allv["known_at"] >= row["event_timestamp"] - VIEW.ttl)]
        if cand.empty:
            assert pd.isna(got.loc[i, "known_at"])
            continue
        best = cand.sort_values(["known_at", "date"]).iloc[-1]
        assert got.loc[i, "known_at"] == best["known_at"]
        assert got.loc[i, "ret_5d"] == pytest.approx(best["ret_5d"])
    assert got["quality_score"].notna().sum() == got["known_at"].notna().sum()
    assert set(got["freshness_status"].dropna()) <= {"ok", "warning", "critical"}
    # the read-time quality is the validation formula at the requested time
    have = got[got["known_at"].notna()].reset_index(drop=True)
    ref = validate_vectors(have, offline.config("tech"), now=have["event_timestamp"].to_numpy())
    np.testing.assert_allclose(have["quality_score"], ref.quality["quality_score"])
    assert list(have["freshness_status"]) == list(ref.quality["freshness_status"])
    assert (have["source_reliability"] == 0.5).all()  # unknown source "a": default


def test_pit_for_one_close_and_materialize_to_online():
    store = MarketStore("duckdb:///:memory:")
    off = OfflineFeatureStore(store)
    off.register(VIEW)
    hist = _history(n_days=10)
    off.write("tech", hist, source="a")
    day = pd.Timestamp("2024-01-10")
    rows = pd.DataFrame({"symbol": ["AAA", "BBB", "CCC"],
                         "event_timestamp": close_timestamp(pd.Series([day] * 3))})
    got = off.get_historical_features(rows, "tech", ["rsi_14"])
    assert list(got.columns[-3:]) == ["rsi_14", "quality_score", "freshness_status"]
    assert (got["known_at"] <= got["event_timestamp"]).all()
    online = OnlineFeatureStore(None, prefix=f"t{uuid.uuid4().hex}")
    assert materialize(off, online, "tech", ["AAA", "BBB", "CCC", "ZZZ"], pd.Timestamp(day)) \
        <= 3
    vec = online.get("tech", "AAA")
    assert vec is None or pd.Timestamp(vec["known_at"]) <= pd.Timestamp(day)
    store.close()


def _redis_or_skip():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    return redis


def test_online_ttl_expiry_on_real_redis():
    redis = _redis_or_skip()
    prefix = f"vfr:test:{uuid.uuid4().hex}"
    store = OnlineFeatureStore(REDIS_URL, prefix=prefix, ttl_s=1.0)
    try:
        assert store.backend == "redis"
        store.put("tech", "AAA", {"rsi_14": 55.5, "ret_5d": float("nan"),
                                  "known_at": pd.Timestamp("2024-01-10 21:00")})
        vec = store.get("tech", "AAA")
        assert vec == {"rsi_14": 55.5, "ret_5d": None, "known_at": "2024-01-10T21:00:00"}
        raw = redis.Redis.from_url(REDIS_URL)
        assert 0 < raw.pttl(f"{prefix}:tech:AAA") <= 1000
        assert 0 < store.ttl_remaining("tech", "AAA") <= 1.0
        time.sleep(1.2)
        assert store.get("tech", "AAA") is None
        assert raw.exists(f"{prefix}:tech:AAA") == 0
        # default TTL is 15 minutes
        default = OnlineFeatureStore(REDIS_URL, prefix=prefix)
        default.put("tech", "BBB", {"x": 1})
        assert 899 < default.ttl_remaining("tech", "BBB") <= 900
    finally:
        store.delete_all()


def test_online_falls_back_to_memory_when_redis_unreachable():
    now = [1000.0]
    store = OnlineFeatureStore("redis://127.0.0.1:1/0", prefix="x", ttl_s=900,
                               clock=lambda: now[0])
    assert store.backend == "memory" and "ConnectionError" in store.fallback_reason
    frame = pd.DataFrame({"symbol": ["AAA", "AAA", "BBB"], "known_at": pd.to_datetime(
        ["2024-01-09 21:00", "2024-01-10 21:00", "2024-01-10 21:00"]), "rsi_14": [1.0, 2.0, 3.0]})
    assert store.put_frame("tech", frame) == 2
    assert store.get("tech", "AAA")["rsi_14"] == 2.0  # the latest vector
    assert list(store.get_many("tech", ["AAA", "BBB", "CCC"])["rsi_14"]) == [2.0, 3.0]
    now[0] += 899.0
    assert store.get("tech", "BBB") is not None
    now[0] += 1.0  # 15 minutes after the write
    assert store.get("tech", "BBB") is None and store.ttl_remaining("tech", "AAA") is None
    # without any URL: memory from the start, no fallback reason
    assert OnlineFeatureStore(None).fallback_reason is None
