"""Malformed inputs: the error names file, row and column, and the store is left unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.data.helpers import synthetic_raw, write_av, write_yahoo
from vfr.data import MarketStore, ingest, read_prices
from vfr.errors import DataValidationError


def _edit(path: Path, row: int, column: str, value: str) -> None:
    """Set cell (1-based data row, column) of a csv file to ``value`` (text)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row - 1, column] = value
    df.to_csv(path, index=False)


def _av_bad(tmp: Path, case: str) -> tuple[Path, str, int | None, str]:
    """Write a 2-file AV folder with one defect; return (folder, bad file, row, column)."""
    folder = tmp / f"bad_{case}"
    paths = write_av(synthetic_raw(("AAA", "BBB")), folder)
    bad = paths[1]  # DA-BBB-T-2021-04-21.csv (rows newest first)
    if case == "missing_column":
        df = pd.read_csv(bad, dtype=str).drop(columns="adjusted_close")
        df.to_csv(bad, index=False)
        return folder, bad.name, None, "adjusted_close"
    if case == "non_numeric":
        _edit(bad, 3, "close", "12.5x")
        return folder, bad.name, 3, "close"
    if case == "empty_value":
        _edit(bad, 2, "volume", "")
        return folder, bad.name, 2, "volume"
    if case == "bad_date":
        _edit(bad, 4, "timestamp", "2020-13-45")
        return folder, bad.name, 4, "timestamp"
    if case == "duplicate_date":
        first = pd.read_csv(bad, dtype=str).loc[3, "timestamp"]  # row 4
        _edit(bad, 5, "timestamp", first)
        return folder, bad.name, 5, "timestamp"
    if case == "negative_price":
        _edit(bad, 2, "low", "-1.5")
        return folder, bad.name, 2, "low"
    if case == "zero_price":
        _edit(bad, 6, "open", "0")
        return folder, bad.name, 6, "open"
    if case == "negative_volume":
        _edit(bad, 1, "volume", "-100")
        return folder, bad.name, 1, "volume"
    if case == "high_below_low":
        low = float(pd.read_csv(bad).loc[3, "low"])
        _edit(bad, 4, "high", str(low - 0.25))
        return folder, bad.name, 4, "high"
    raise AssertionError(case)


CASES = ["missing_column", "non_numeric", "empty_value", "bad_date", "duplicate_date",
         "negative_price", "zero_price", "negative_volume", "high_below_low"]


@pytest.mark.parametrize("case", CASES)
def test_malformed_av_names_file_row_column_and_store_unchanged(
        case: str, tmp_path: Path, store: MarketStore) -> None:
    good = tmp_path / "good"
    write_av(synthetic_raw(("AAA", "CCC"), n=8), good)
    ingest(good, store)
    before_counts, before = store.table_counts(), store.read_prices()

    folder, fname, row, column = _av_bad(tmp_path, case)
    with pytest.raises(DataValidationError) as exc:
        ingest(folder, store)
    err = exc.value
    msg = str(err)
    assert fname in msg and err.source is not None and err.source.endswith(fname)
    assert repr(column) in msg and column in str(err.column)
    if row is not None:
        assert f"row {row}," in msg and err.row == row

    assert store.table_counts() == before_counts
    pd.testing.assert_frame_equal(store.read_prices(), before)


def test_yahoo_null_value_named_by_yahoo_column(tmp_path: Path) -> None:
    (path,) = write_yahoo(synthetic_raw(("QQQ",)), tmp_path)
    _edit(path, 3, "Adj Close", "null")
    with pytest.raises(DataValidationError, match=r"QQQ\.csv, row 3, column 'Adj Close'"):
        read_prices(path)


def test_yahoo_missing_columns_are_named(tmp_path: Path) -> None:
    (path,) = write_yahoo(synthetic_raw(("QQQ",)), tmp_path)
    pd.read_csv(path).drop(columns=["Volume", "Low"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="'Low', 'Volume'"):
        read_prices(path)


def test_first_bad_row_is_reported(tmp_path: Path) -> None:
    (path,) = write_av(synthetic_raw(("AAA",)), tmp_path)
    _edit(path, 5, "open", "bad")
    _edit(path, 2, "volume", "x")
    with pytest.raises(DataValidationError) as exc:
        read_prices(path)
    assert (exc.value.row, exc.value.column) == (2, "volume")


def test_parquet_row_is_file_position(tmp_path: Path) -> None:
    raw = synthetic_raw(("AAA", "BBB"))
    raw.loc[8, "high"] = raw.loc[8, "low"] - 1.0  # 9th row of the file
    path = tmp_path / "p.parquet"
    raw.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"p\.parquet, row 9, column 'high'"):
        read_prices(path)
    raw = synthetic_raw(("AAA",))
    raw.loc[3, "date"] = raw.loc[2, "date"]
    raw.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"row 4, column 'date': duplicate"):
        read_prices(path)


def test_zero_volume_is_allowed(tmp_path: Path) -> None:
    raw = synthetic_raw(("AAA",))
    raw.loc[2, "volume"] = 0
    (path,) = write_av(raw, tmp_path)
    assert (read_prices(path)["volume"] == 0).sum() == 1


def test_bad_universe_leaves_store_unchanged(tmp_path: Path, duck_url: str) -> None:
    good = tmp_path / "good"
    write_av(synthetic_raw(("AAA",)), good)
    uni = tmp_path / "u.csv"
    uni.write_text("Symbol,Name,Sector\nAAA,A Inc,Tech\n")
    with MarketStore(duck_url) as store:
        ingest(good, store, uni)
        before = store.table_counts()
        write_av(synthetic_raw(("AAA", "ZZZ"), n=9), tmp_path / "more")
        uni.write_text("Symbol,Sector\nAAA,Tech\n")
        with pytest.raises(DataValidationError, match="'Name'|name"):
            ingest(tmp_path / "more", store, uni)
        assert store.table_counts() == before == {"prices": 6, "securities": 1}


def test_a_csv_named_after_a_symbol_outside_the_universe_is_refused(tmp_path: Path, duck_url: str) -> None:
    """Issue 17: a Yahoo csv has no symbol column, so GARB.csv holding IBM's rows would be
    stored as GARB; with a universe given, a file-name symbol outside it is refused."""
    folder = tmp_path / "yahoo"
    (ibm,) = write_yahoo(synthetic_raw(("IBM",)), folder)
    garb = ibm.with_name("GARB.csv")
    garb.write_text(ibm.read_text())  # IBM's rows under the wrong name
    uni = tmp_path / "u.csv"
    uni.write_text("Symbol,Name,Sector\nIBM,IBM Corp,Information Technology\n")
    members = tmp_path / "members.csv"
    members.write_text("symbol,start_date,end_date\nIBM,2000-01-01,\n")
    with MarketStore(duck_url) as store:
        for universe in (uni, members):
            with pytest.raises(DataValidationError, match=r"GARB\.csv.*'GARB' is taken from the file name") as info:
                ingest(folder, store, universe)
            assert str(universe) in str(info.value)
            assert store.table_counts() == {}  # nothing written
        garb.unlink()
        assert ingest(folder, store, uni).symbols == 1  # a file named after a listed symbol is read
        # without a universe file the file name is the only source of the symbol (documented)
        assert ingest(ibm, store).symbols == 1


def test_file_name_symbols_without_a_universe_warn_in_one_line(tmp_path: Path, duck_url: str) -> None:
    """Issue 17: with no universe to check them, csv file names are trusted as symbols, and the
    ingest says so (one line, printed by `vfr data ingest`); with a universe, or for Parquet
    (which has a symbol column), it does not."""
    import io

    from rich.console import Console

    from vfr.config import Settings
    from vfr.pipeline import stage_ingest

    folder = tmp_path / "yahoo"
    write_yahoo(synthetic_raw(("IBM", "KO")), folder)
    uni = tmp_path / "u.csv"
    uni.write_text("Symbol,Name,Sector\nIBM,IBM Corp,Information Technology\nKO,Coca-Cola,Consumer Staples\n")
    parquet = tmp_path / "p.parquet"
    synthetic_raw(("IBM",)).to_parquet(parquet)
    with MarketStore(duck_url) as store:
        (warning,) = ingest(folder, store).warnings
        assert "2 symbol(s) (IBM, KO)" in warning and "file names" in warning and "--universe" in warning
        assert "\n" not in warning
        assert ingest(folder, store, uni).warnings == ()
        assert ingest(parquet, store).warnings == ()
    buf = io.StringIO()
    settings = Settings(home=tmp_path / "home")
    stage_ingest(settings, folder, console=Console(file=buf, width=80))
    lines = [line for line in buf.getvalue().splitlines() if "warning:" in line]
    assert len(lines) == 1 and "taken from csv file names" in lines[0], buf.getvalue()


def test_ratios_frame_is_validated_with_the_row_named(tmp_path):
    """vfr.data.read_ratios: canonical layout, infinite -> NaN, the first bad row named."""
    import numpy as np

    from vfr.data import clean_ratios, read_ratios

    good = pd.DataFrame({"symbol": ["KO", "KO", "KO"], "period_end": ["2023-06-30", "2023-03-31", "2023-06-30"],
                         "available_date": ["2023-07-27", "2023-04-25", "2023-08-30"],
                         "roe": [0.4, np.inf, 0.5]})
    out = clean_ratios(good)
    assert list(out.columns) == ["symbol", "period_end", "available_date", "roe", "debt_to_equity",
                                 "gross_margin", "operating_margin", "net_margin"]
    assert list(out["period_end"].dt.strftime("%m-%d")) == ["03-31", "06-30"]  # one row per period
    assert np.isnan(out["roe"].iat[0]) and out["roe"].iat[1] == 0.4  # inf -> NaN; earliest filing kept
    assert out["net_margin"].isna().all()  # absent ratio: NaN, never 0
    early = good.assign(available_date=["2023-06-30", "2023-04-25", "2023-08-30"])
    with pytest.raises(DataValidationError, match=r"ratios row 0 \(KO\).*available_date after period_end"):
        clean_ratios(early, source="mine.csv")
    with pytest.raises(DataValidationError, match="none of the ratio columns"):
        clean_ratios(good.drop(columns="roe"))
    with pytest.raises(DataValidationError, match="lacks required column"):
        clean_ratios(good.drop(columns="available_date"))
    path = tmp_path / "r.csv"
    good.to_csv(path, index=False)
    assert read_ratios(path).equals(out)
    with pytest.raises(FileNotFoundError, match="ratios file not found"):
        read_ratios(tmp_path / "missing.csv")
