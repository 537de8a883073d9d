"""Readers on real-format files written from the real development data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SP500_UNIVERSE, require_shared
from tests.data.helpers import expected_raw, synthetic_raw, write_av, write_yahoo
from vfr.data import (
    read_alphavantage_folder,
    read_prices,
    read_prices_parquet,
    read_universe,
    read_yahoo_csv,
)
from vfr.data.readers import RAW_COLUMNS, symbol_from_filename
from vfr.errors import DataValidationError

THREE = ["AAPL", "JPM", "XOM"]


@pytest.fixture
def raw3(sp500_raw_small: pd.DataFrame) -> pd.DataFrame:
    """Three real symbols, 2010-2019, as stored in the Parquet file."""
    return sp500_raw_small[sp500_raw_small["symbol"].isin(THREE)].reset_index(drop=True)


def _check_canonical(df: pd.DataFrame) -> None:
    assert list(df.columns) == RAW_COLUMNS
    assert isinstance(df.index, pd.RangeIndex)
    assert df["date"].dtype == "datetime64[ns]"
    assert pd.api.types.is_string_dtype(df["symbol"].dtype)
    assert df.sort_values(["symbol", "date"]).index.equals(df.index)


def test_parquet_reader_matches_source(raw3: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "prices.parquet"
    raw3.sample(frac=1.0, random_state=1).to_parquet(path)  # shuffled on disk
    got = read_prices_parquet(path)
    _check_canonical(got)
    pd.testing.assert_frame_equal(got, expected_raw(raw3))
    pd.testing.assert_frame_equal(read_prices(path), got)


@pytest.mark.parametrize("pooksoft", [True, False])
def test_alphavantage_folder_round_trip(raw3: pd.DataFrame, tmp_path: Path, pooksoft: bool) -> None:
    paths = write_av(raw3, tmp_path / "av", pooksoft=pooksoft)
    assert paths[0].read_text().splitlines()[0] == (
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient")
    got = read_alphavantage_folder(tmp_path / "av")
    _check_canonical(got)
    assert sorted(got["symbol"].unique()) == THREE
    pd.testing.assert_frame_equal(got, expected_raw(raw3))
    pd.testing.assert_frame_equal(read_prices(tmp_path / "av"), got)  # dispatch by header


def test_yahoo_folder_and_file_round_trip(raw3: pd.DataFrame, tmp_path: Path) -> None:
    write_yahoo(raw3, tmp_path / "yahoo")
    got = read_yahoo_csv(tmp_path / "yahoo")
    _check_canonical(got)
    want = expected_raw(raw3).assign(dividend_amount=0.0, split_coefficient=1.0)
    pd.testing.assert_frame_equal(got, want)
    one = read_yahoo_csv(tmp_path / "yahoo" / "JPM.csv")
    pd.testing.assert_frame_equal(one, want[want["symbol"] == "JPM"].reset_index(drop=True))
    pd.testing.assert_frame_equal(read_prices(tmp_path / "yahoo" / "JPM.csv"), one)


def test_yahoo_without_adj_close_uses_close(tmp_path: Path) -> None:
    raw = synthetic_raw(("ZZZ",))
    (path,) = write_yahoo(raw, tmp_path, adj_close=False)
    got = read_prices(path)
    assert (got["adjusted_close"] == got["close"]).all()
    assert got["symbol"].unique().tolist() == ["ZZZ"]


def test_layout_detected_from_header_not_name(tmp_path: Path) -> None:
    raw = synthetic_raw(("AAA",))
    (av,) = write_av(raw, tmp_path / "a", pooksoft=False)
    yahoo_named = tmp_path / "b" / "DA-AAA-T-2021-04-21.csv"  # AV-style name, Yahoo content
    write_yahoo(raw, tmp_path / "b")
    (tmp_path / "b" / "AAA.csv").rename(yahoo_named)
    got_av, got_y = read_prices(av), read_prices(yahoo_named)
    pd.testing.assert_frame_equal(got_av, expected_raw(raw))
    assert got_y["symbol"].unique().tolist() == ["AAA"]
    assert (got_y["split_coefficient"] == 1.0).all()
    bad = tmp_path / "c.csv"
    bad.write_text("when,price\n2020-01-01,1\n")
    with pytest.raises(DataValidationError, match="unknown csv layout"):
        read_prices(bad)


def test_mixed_folder_and_duplicate_symbol_across_files(tmp_path: Path) -> None:
    raw = synthetic_raw(("AAA", "BBB"))
    write_av(raw[raw.symbol == "AAA"], tmp_path / "m")
    write_yahoo(raw[raw.symbol == "BBB"], tmp_path / "m")
    got = read_prices(tmp_path / "m")
    assert got["symbol"].unique().tolist() == ["AAA", "BBB"]
    write_yahoo(raw[raw.symbol == "AAA"], tmp_path / "m")  # AAA.csv beside DA-AAA-T-...csv
    with pytest.raises(DataValidationError, match="appears in two files"):
        read_prices(tmp_path / "m")


def test_symbol_from_filename() -> None:
    assert symbol_from_filename("DA-BRK.B-T-2021-04-21.csv") == "BRK.B"
    assert symbol_from_filename("/x/DA-A-T-anything.csv") == "A"
    assert symbol_from_filename("MSFT.csv") == "MSFT"


def test_read_universe_real() -> None:
    path = require_shared(SP500_UNIVERSE)
    uni = read_universe(path)
    assert list(uni.columns) == ["symbol", "name", "sector"]
    assert len(uni) == 505 and uni["symbol"].is_unique
    assert uni.loc[uni.symbol == "MMM", "sector"].item() == "Industrials"
    assert uni["symbol"].is_monotonic_increasing


def test_read_universe_errors(tmp_path: Path) -> None:
    p = tmp_path / "u.csv"
    p.write_text("Symbol,Name\nAAA,A Inc\n")
    with pytest.raises(DataValidationError, match="'Sector'|sector"):
        read_universe(p)
    p.write_text("Symbol,Name,Sector\nAAA,A Inc,Tech\nAAA,A again,Tech\n")
    with pytest.raises(DataValidationError, match="row 2") as exc:
        read_universe(p)
    assert exc.value.column == "symbol"


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="no such file"):
        read_prices(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="no csv files"):
        read_prices(tmp_path / "empty")
