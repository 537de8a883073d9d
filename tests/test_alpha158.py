"""Qlib's Alpha158 factor set (vfr.features.alpha158, issue 18).

Reference values: ``tests/data/fixtures/alpha158/qlib_reference.csv`` was written by
``benchmarks/alpha158_qlib_reference.py`` with Qlib's own operators (pyqlib 0.9.7, in a
throwaway environment) on the adjusted prices of AAPL, CMI, JPM and ODFL (rebuilt from the shared
prices by ``reference_prices`` of that script, ~335 trading days each: a 2-for-1 split, the 2008
crash and 32 zero-volume days), on every 7th row from row 61 (where every window is full).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SP500_PRICES, require_shared
from vfr.data.universe import clean_membership
from vfr.errors import DataValidationError
from vfr.features import build_all_features
from vfr.features.alpha158 import (
    ALPHA158_NAMES,
    KBAR,
    ROLLING,
    WINDOWS,
    alpha158,
    alpha158_names,
    alpha158_values,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "fixtures" / "alpha158"


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    """The reference's input rows, rebuilt from the shared prices (never stored in the project)."""
    from benchmarks.alpha158_qlib_reference import reference_prices

    return reference_prices(require_shared(SP500_PRICES))


@pytest.fixture(scope="module")
def features(prices: pd.DataFrame) -> pd.DataFrame:
    return alpha158(prices)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal values, NaN where NaN (bit for bit)."""
    np.testing.assert_array_equal(a.to_numpy(np.float32), b.to_numpy(np.float32))


# --- (c) columns --------------------------------------------------------------------------

def test_names_and_order_follow_qlib(features: pd.DataFrame) -> None:
    assert len(ALPHA158_NAMES) == 157 and len(alpha158_names(vwap=True)) == 158
    assert list(features.columns) == ["symbol", "date", *ALPHA158_NAMES]
    assert list(ALPHA158_NAMES[:12]) == [*KBAR, "OPEN0", "HIGH0", "LOW0"]
    assert ALPHA158_NAMES[12:17] == ("ROC5", "ROC10", "ROC20", "ROC30", "ROC60")
    assert ALPHA158_NAMES[-1] == "VSUMD60" and len(ROLLING) * len(WINDOWS) == 145
    reference_header = pd.read_csv(FIXTURE / "qlib_reference.csv", nrows=0).columns[2:]
    assert list(reference_header) == list(ALPHA158_NAMES)  # Qlib's own order, VWAP0 left out
    assert all(features[c].dtype == np.float32 for c in ALPHA158_NAMES)


def test_vwap0_only_with_a_vwap_column(prices: pd.DataFrame) -> None:
    p = prices.assign(vwap=(prices["high"] + prices["low"] + prices["close"]) / 3.0)
    out = alpha158(p)
    assert list(out.columns[2:]) == alpha158_names(vwap=True)
    assert out.columns[2 + 12] == "VWAP0"
    expected = (p["vwap"] / p["close"]).to_numpy(np.float32)
    np.testing.assert_allclose(out["VWAP0"].to_numpy(), expected, rtol=1e-6)
    _same(out[list(ALPHA158_NAMES)], alpha158(prices)[list(ALPHA158_NAMES)])


# --- (a) Qlib's values ----------------------------------------------------------------------

def test_values_match_qlib_operators(features: pd.DataFrame) -> None:
    ref = pd.read_csv(FIXTURE / "qlib_reference.csv", parse_dates=["date"])
    got = ref[["symbol", "date"]].merge(features, on=["symbol", "date"], how="left")
    assert len(got) == len(ref) == 159
    failures = []
    for name in ALPHA158_NAMES:
        a, b = got[name].to_numpy(np.float64), ref[name].to_numpy(np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            failures.append(f"{name}: NaN at {np.flatnonzero(np.isnan(a) != np.isnan(b))[:5]}")
            continue
        ok = ~np.isnan(a)
        # float32 output vs Qlib's float64 (printed to 9 digits); values near 0 by an absolute floor
        if not np.allclose(a[ok], b[ok], rtol=2e-6, atol=1e-8):
            worst = np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-8))
            failures.append(f"{name}: max rel. error {worst:.2e}")
    assert not failures, failures
    assert ref["CORD5"].isna().sum() == 1  # ODFL: no finite pair left; elsewhere zero-volume days are skipped


def test_warm_up_is_nan_until_the_window_is_full(prices: pd.DataFrame, features: pd.DataFrame) -> None:
    one = features[features["symbol"] == "AAPL"].reset_index(drop=True)
    diff_based = ("CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD", "WVMA", "VSUMP", "VSUMN", "VSUMD")
    for op in ROLLING:
        for w in WINDOWS:
            first = w if (op in diff_based or op == "ROC") else w - 1
            values = one[f"{op}{w}"].to_numpy()
            assert np.isnan(values[:first]).all(), f"{op}{w}"
            assert not np.isnan(values[first]), f"{op}{w}"
    assert not one[list(KBAR)].isna().any().any()


def test_independent_pandas_reference_on_real_stocks() -> None:
    """A slow, obvious pandas transcription of a dozen Qlib formulas (per symbol, rolling with
    full windows) on 5 real stocks over 2 years of the development set."""
    require_shared(SP500_PRICES)
    from vfr.data import adjust_prices, read_prices_parquet

    raw = read_prices_parquet(SP500_PRICES)
    raw = raw[raw["symbol"].isin(["MSFT", "KO", "NVDA", "WELL", "CHTR"])
              & (raw["date"] >= "2009-01-01") & (raw["date"] < "2011-01-01")]
    px = adjust_prices(raw.reset_index(drop=True))
    out = alpha158(px)
    for sym, g in px.groupby("symbol"):
        g = g.reset_index(drop=True)
        mine = out[out["symbol"] == sym].reset_index(drop=True)
        c, h, lo, v = g["close"], g["high"], g["low"], g["volume"]

        def roll(x: pd.Series, w: int):  # noqa: ANN202
            return x.rolling(w, min_periods=w)

        ref = {}
        for w in WINDOWS:
            ref[f"MA{w}"] = roll(c, w).mean() / c
            ref[f"STD{w}"] = roll(c, w).std() / c
            ref[f"QTLU{w}"] = roll(c, w).quantile(0.8) / c
            ref[f"RANK{w}"] = roll(c, w).rank(pct=True)
            ref[f"IMAX{w}"] = roll(h, w).apply(lambda a: a.argmax() + 1, raw=True) / w
            ref[f"IMIN{w}"] = roll(lo, w).apply(lambda a: a.argmin() + 1, raw=True) / w
            x = np.arange(1, w + 1)
            fit = roll(c, w).apply(lambda a, x=x: np.polyfit(x, a, 1)[0], raw=True)
            ref[f"BETA{w}"] = fit / c
            ref[f"RESI{w}"] = roll(c, w).apply(
                lambda a, x=x: a[-1] - np.polyval(np.polyfit(x, a, 1), x[-1]), raw=True) / c
            ref[f"RSQR{w}"] = roll(c, w).apply(lambda a, x=x: np.corrcoef(x, a)[0, 1] ** 2, raw=True)
            ref[f"CORR{w}"] = roll(c, w).corr(np.log(v + 1))
            diff = c.diff()
            ref[f"SUMP{w}"] = roll(diff.clip(lower=0), w).sum() / (roll(diff.abs(), w).sum() + 1e-12)
            ref[f"VSTD{w}"] = roll(v, w).std() / (v + 1e-12)
        for name, expected in ref.items():
            a, b = mine[name].to_numpy(np.float64), expected.to_numpy(np.float64)
            both = ~np.isnan(a) & ~np.isnan(b)
            assert both.sum() > 150, (sym, name)
            # NaN only where the window is not full, or where Qlib's std rule blanks RSQR/CORR
            assert np.array_equal(np.isnan(a[60:]), np.isnan(b[60:])) or name.startswith(("RSQR", "CORR")), \
                (sym, name)
            np.testing.assert_allclose(a[both], b[both], rtol=1e-5, atol=1e-7, err_msg=f"{sym} {name}")


# --- (b) point in time ----------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["2008-03-14", "2008-07-01", "2009-01-02"])
def test_no_look_ahead(prices: pd.DataFrame, features: pd.DataFrame, cut: str) -> None:
    """Truncating the input after date t, or rewriting every later row, leaves t and earlier unchanged."""
    t = pd.Timestamp(cut)
    truncated = alpha158(prices[prices["date"] <= t])
    before = features[features["date"] <= t].reset_index(drop=True)
    assert len(truncated) == len(before)
    _same(truncated[list(ALPHA158_NAMES)], before[list(ALPHA158_NAMES)])
    changed = prices.copy()
    later = changed["date"] > t
    for col in ("open", "high", "low", "close"):
        changed.loc[later, col] *= np.random.default_rng(0).uniform(0.5, 2.0, later.sum())
    changed.loc[later, "volume"] = 0.0
    again = alpha158(changed)
    _same(again.loc[~later.to_numpy(), list(ALPHA158_NAMES)].reset_index(drop=True),
          features.loc[~later.to_numpy(), list(ALPHA158_NAMES)].reset_index(drop=True))


# --- rows -------------------------------------------------------------------------------------

def test_row_order_and_invalid_rows(prices: pd.DataFrame, features: pd.DataFrame) -> None:
    shuffled = prices.sample(frac=1.0, random_state=1)
    out = alpha158(shuffled)
    assert out[["symbol", "date"]].equals(features[["symbol", "date"]])
    _same(out[list(ALPHA158_NAMES)], features[list(ALPHA158_NAMES)])
    # an invalid row gets NaN and is skipped by the windows (they hold the last N valid rows)
    bad = prices.copy()
    row = int(np.flatnonzero((bad["symbol"] == "JPM").to_numpy())[100])
    bad.loc[row, "close"] = np.nan
    out = alpha158(bad)
    assert out.loc[row, list(ALPHA158_NAMES)].isna().all()
    keep = np.ones(len(bad), dtype=bool)
    keep[row] = False
    _same(out.loc[keep, list(ALPHA158_NAMES)].reset_index(drop=True),
          alpha158(prices.drop(index=row))[list(ALPHA158_NAMES)])


def test_duplicate_rows_and_missing_columns_raise(prices: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError):
        alpha158(pd.concat([prices, prices.iloc[[5]]]))
    with pytest.raises(DataValidationError):
        alpha158(prices.drop(columns="volume"))
    empty = alpha158(prices.iloc[:0])
    assert empty.shape == (0, 159)
    short = alpha158(prices[prices["symbol"] == "CMI"].iloc[:30])  # shorter than most windows
    assert short.shape == (30, 159)
    assert short["MA60"].isna().all() and short["MA20"].notna().sum() == 11


def test_values_of_chosen_rows_equal_the_full_frame(prices: pd.DataFrame, features: pd.DataFrame) -> None:
    """``rows`` picks output rows only: each kept row keeps its whole-history values, whatever
    else is dropped (a whole stock, a stretch, single days, an invalid row)."""
    bad = prices.copy()
    invalid = int(np.flatnonzero((bad["symbol"] == "CMI").to_numpy())[200])
    bad.loc[invalid, "volume"] = -1.0
    full = alpha158(bad)
    rng = np.random.default_rng(7)
    rows = rng.random(len(full)) < 0.6
    rows[(full["symbol"] == "ODFL").to_numpy()] = False  # a whole stock dropped
    rows[invalid] = True
    got = alpha158_values(bad, rows=rows)
    assert got.shape == (int(rows.sum()), len(ALPHA158_NAMES)) and got.dtype == np.float32
    _same(pd.DataFrame(got), full.loc[rows, list(ALPHA158_NAMES)])
    assert np.isnan(got[int(rows[:invalid].sum())]).all()  # the invalid row: NaN
    out = np.zeros((int(rows.sum()), len(ALPHA158_NAMES)), dtype=np.float32, order="F")
    assert alpha158_values(bad, rows=rows, out=out) is out
    _same(pd.DataFrame(out), pd.DataFrame(got))
    none = alpha158_values(bad, rows=np.zeros(len(bad), dtype=bool))
    assert none.shape == (0, len(ALPHA158_NAMES))
    with pytest.raises(ValueError, match="rows must be a bool array"):
        alpha158_values(bad, rows=rows[1:])
    with pytest.raises(ValueError, match="out must be float32"):
        alpha158_values(bad, rows=rows, out=out[1:])


# --- (3) the opt-in group in the builder -----------------------------------------------------

def test_builder_opt_in_group_respects_membership(prices: pd.DataFrame, features: pd.DataFrame) -> None:
    default = build_all_features(prices)
    assert "alpha158" not in default.attrs["groups_present"]
    assert not set(ALPHA158_NAMES) & set(default.columns)
    membership = clean_membership(pd.DataFrame({"symbol": ["AAPL", "JPM", "ODFL"],
                                                "start_date": ["2008-06-02", "2007-01-01", "2002-01-02"],
                                                "end_date": [None, "2009-01-01", None]}))
    out = build_all_features(prices, membership=membership, alpha158=True)
    base = build_all_features(prices, membership=membership)
    assert out.attrs["groups_present"][-1] == "alpha158"
    assert list(out.columns) == [*base.columns, *ALPHA158_NAMES]  # appended, unranked
    assert not any(f"{name}_rank" in out.columns for name in ALPHA158_NAMES)
    assert out[["symbol", "date"]].equals(base[["symbol", "date"]])
    assert set(out["symbol"]) == {"AAPL", "JPM", "ODFL"}
    # values are each stock's own history (computed on every row, then filtered to members)
    expected = out[["symbol", "date"]].merge(features, on=["symbol", "date"], how="left")
    _same(out[list(ALPHA158_NAMES)], expected[list(ALPHA158_NAMES)])
