"""MarketStore on a real DuckDB file and the real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.data.helpers import synthetic_raw, write_av
from vfr.config import Settings
from vfr.data import IngestReport, MarketStore, adjust_prices, ingest
from vfr.data.adjust import PRICES_COLUMNS
from vfr.errors import DataValidationError, StageError

DB_ERRORS = (duckdb.Error, psycopg.Error)


@pytest.fixture
def small_prices(sp500_raw_small: pd.DataFrame) -> pd.DataFrame:
    return adjust_prices(sp500_raw_small)


def _wide_frame(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "symbol": np.where(np.arange(n) % 2 == 0, "AAA", "BRK.B"),
        "date": pd.bdate_range("2021-01-04", periods=n).astype("datetime64[ns]"),
        "f32": rng.normal(size=n).astype("float32"),
        "f32_nan": np.where(np.arange(n) < 5, np.nan, rng.normal(size=n)).astype("float32"),
        "f64": rng.normal(size=n),
        "i64": np.arange(n, dtype="int64") * 10**12,
        "i32": np.arange(n, dtype="int32"),
        "flag": np.arange(n) % 3 == 0,
        "label": pd.Series([f"x{i}'\"," if i % 7 else "" for i in range(n)], dtype="str"),
        "ts": (pd.Timestamp("2020-01-01 09:30")
               + pd.to_timedelta(np.arange(n), unit="h")).astype("datetime64[ns]"),
    }).sort_values(["symbol", "date"], ignore_index=True)  # canonical order, as read back


def test_prices_round_trip_dtypes(store: MarketStore, small_prices: pd.DataFrame) -> None:
    assert store.write_prices(small_prices) == len(small_prices)
    got = store.read_prices()
    assert list(got.columns) == PRICES_COLUMNS
    assert got["date"].dtype == "datetime64[ns]"
    assert pd.api.types.is_string_dtype(got["symbol"].dtype) and got["symbol"].dtype == "str"
    assert all(got[c].dtype == np.float64 for c in PRICES_COLUMNS[2:])
    assert isinstance(got.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(got, small_prices)


def test_read_prices_filters(store: MarketStore, small_prices: pd.DataFrame) -> None:
    store.write_prices(small_prices)
    got = store.read_prices(symbols=["MSFT", "AAPL"], start="2015-03-02", end="2015-03-31",
                            columns=["close", "volume"])
    want = small_prices[small_prices.symbol.isin(["AAPL", "MSFT"])
                        & small_prices.date.between("2015-03-02", "2015-03-31")]
    pd.testing.assert_frame_equal(got, want[["symbol", "date", "close", "volume"]]
                                  .reset_index(drop=True))
    assert got["date"].min() == pd.Timestamp("2015-03-02")
    assert got["date"].max() == pd.Timestamp("2015-03-31")  # end is inclusive
    assert store.read_prices(symbols=["NOPE"]).empty
    with pytest.raises(ValueError, match="no column"):
        store.read_prices(columns=["nope"])


def test_ingest_twice_is_idempotent(store: MarketStore, sp500_raw_small: pd.DataFrame,
                                    tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    sp500_raw_small.to_parquet(path)
    first = ingest(path, store)
    assert isinstance(first, IngestReport)
    assert (first.rows, first.symbols) == (len(sp500_raw_small), 20)
    assert first.start == pd.Timestamp("2010-01-04")
    snap = store.read_prices()
    second = ingest(path, store)
    assert second.rows == first.rows
    assert store.table_counts() == {"prices": len(sp500_raw_small)}
    pd.testing.assert_frame_equal(store.read_prices(), snap)


def test_upsert_replaces_overlap_and_keeps_rest(store: MarketStore) -> None:
    old = adjust_prices(synthetic_raw(("AAA", "BBB"), n=6))
    store.write_prices(old)
    new = adjust_prices(synthetic_raw(("BBB", "CCC"), n=8))  # BBB: 6 overlapping + 2 new
    new["close"] += 1000.0
    store.write_prices(new)
    got = store.read_prices()
    assert store.table_counts()["prices"] == 6 + 8 + 8
    pd.testing.assert_frame_equal(got[got.symbol != "AAA"].reset_index(drop=True), new)
    pd.testing.assert_frame_equal(got[got.symbol == "AAA"].reset_index(drop=True), old[old.symbol == "AAA"])


def test_write_prices_failure_leaves_store_unchanged(store: MarketStore) -> None:
    good = adjust_prices(synthetic_raw(("AAA",)))
    store.write_prices(good)
    bad = adjust_prices(synthetic_raw(("AAA", "BBB"), n=9))
    bad.loc[12, "date"] = pd.NaT  # passes the frame checks, rejected by NOT NULL in the db
    with pytest.raises(DB_ERRORS):
        store.write_prices(bad)
    pd.testing.assert_frame_equal(store.read_prices(), good)
    dup = pd.concat([good, good.iloc[:1]], ignore_index=True)
    with pytest.raises(DataValidationError, match="duplicate"):
        store.write_prices(dup)
    assert store.table_counts() == {"prices": len(good)}


def test_replace_table_round_trip(store: MarketStore) -> None:
    df = _wide_frame()
    assert store.replace_table("features", df) == len(df)
    got = store.read_table("features")
    assert list(got.columns) == list(df.columns)
    pd.testing.assert_frame_equal(got, df)
    assert got["f32"].dtype == np.float32 and got["i32"].dtype == np.int32
    part = store.read_table("features", ["date", "f64"], start="2021-01-11", end="2021-01-15",
                            symbols=["BRK.B"])
    want = df[(df.symbol == "BRK.B") & df.date.between("2021-01-11", "2021-01-15")]
    pd.testing.assert_frame_equal(part, want[["date", "f64"]].reset_index(drop=True))
    # a second replace swaps the whole table
    df2 = _wide_frame(n=7, seed=1)
    store.replace_table("features", df2)
    pd.testing.assert_frame_equal(store.read_table("features"), df2)
    assert store.table_counts() == {"features": 7}
    assert store.has_table("features") and not store.has_table("labels")


def test_replace_table_failures_leave_old_table(store: MarketStore) -> None:
    old = _wide_frame()
    store.replace_table("features", old)
    # 1. unsupported dtype: rejected before the transaction
    with pytest.raises(TypeError, match="unsupported dtype"):
        store.replace_table("features", old.assign(span=pd.to_timedelta(old["i32"], unit="D")))
    with pytest.raises(TypeError):
        store.replace_table("features", old.assign(mixed=[1, "a"] * 25))
    # 2. the database rejects rows mid-insert (uint64 beyond BIGINT), inside the transaction
    overflow = old.assign(big=np.full(len(old), 2**63 + 5, dtype="uint64"))
    with pytest.raises(DB_ERRORS):
        store.replace_table("features", overflow)
    pd.testing.assert_frame_equal(store.read_table("features"), old)
    assert store.table_counts() == {"features": len(old)}  # no staging table left behind


@pytest.mark.postgres
def test_replace_table_postgres_nul_byte_rolls_back(pg_url: str) -> None:
    with MarketStore(pg_url) as store:
        store.replace_table("notes", pd.DataFrame({"symbol": ["A"], "note": ["ok"]}))
        with pytest.raises(psycopg.Error):
            store.replace_table("notes", pd.DataFrame({"symbol": ["A", "B"],
                                                       "note": ["fine", "bad\x00byte"]}))
        got = store.read_table("notes")
        assert got.to_dict("list") == {"symbol": ["A"], "note": ["ok"]}


def test_table_names_validated(duck_url: str) -> None:
    with MarketStore(duck_url) as store:
        for name in ["x; DROP TABLE prices", "1abc", "a-b", "", "a" * 60]:
            with pytest.raises(ValueError, match="invalid table name"):
                store.replace_table(name, pd.DataFrame({"a": [1]}))
        with pytest.raises(StageError):
            store.read_table("missing")
        with pytest.raises(StageError):
            store.read_prices()
        store.replace_table("Mixed_Case", pd.DataFrame({"a": [1]}))
        assert store.has_table("mixed_case") and store.table_counts() == {"mixed_case": 1}


def test_universe_round_trip(store: MarketStore) -> None:
    uni = pd.DataFrame({"symbol": ["BRK.B", "AAA"], "name": ["Berkshire", "A, Inc."],
                        "sector": ["Financials", "Tech"]})
    store.write_universe(uni)
    got = store.read_universe()
    assert got["symbol"].tolist() == ["AAA", "BRK.B"]
    assert got.loc[0, "name"] == "A, Inc."
    assert all(got[c].dtype == "str" for c in got.columns)


def test_from_settings_creates_folder_and_reopens(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"store_url": f"duckdb:///{tmp_path / 'a' / 'b' / 's.duckdb'}"})
    raw = synthetic_raw(("AAA",))
    write_av(raw, tmp_path / "av")
    with MarketStore.from_settings(settings) as store:
        ingest(tmp_path / "av", store)
    assert (tmp_path / "a" / "b" / "s.duckdb").exists()
    with MarketStore.from_settings(settings) as store:  # a new process-like reopen
        assert store.table_counts() == {"prices": len(raw)}


def test_default_store_url_is_duckdb_in_home(settings: Settings) -> None:
    with MarketStore.from_settings(settings) as store:
        assert store.backend == "duckdb"
        assert store.table_counts() == {}
    assert (settings.home_dir / "vfr.duckdb").exists()


@pytest.mark.slow
def test_full_development_set_into_duckdb(duck_url: str) -> None:
    from tests.conftest import SP500_PRICES, SP500_UNIVERSE, require_shared

    path = require_shared(SP500_PRICES)
    with MarketStore(duck_url) as store:
        report = ingest(path, store, require_shared(SP500_UNIVERSE))
        assert (report.rows, report.symbols, report.universe_rows) == (2_237_909, 501, 505)
        assert (report.start, report.end) == (pd.Timestamp("1999-11-01"), pd.Timestamp("2019-12-31"))
        got = store.read_prices(symbols=["AAPL"], columns=["close", "close_raw", "adj_factor"])
        np.testing.assert_allclose(got["close_raw"] * got["adj_factor"], got["close"], rtol=1e-12)
