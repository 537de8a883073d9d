"""Quality gates on the real development panel (20 S&P 500 stocks, 2010-2019) and on corrupted
copies of it: each corruption trips its gate, at the documented warning/critical boundaries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vfr.data import adjust_prices
from vfr.errors import DataValidationError, StageError
from vfr.ml import build_dataset, make_labels
from vfr.ml.quality import (
    GateThresholds,
    QualityGateError,
    enforce,
    label_window_ends,
    market_wide,
    robust_scale,
    robust_z,
    run_quality_gates,
)

LABEL = "fwd_dir_1w"
GATES = ["completeness", "outlier_share", "label_balance", "label_count", "unparseable_dates",
         "duplicate_rows", "future_feature_dates", "label_lookahead", "calendar_gap"]


@pytest.fixture(scope="module")
def features(real_panel: pd.DataFrame) -> list[str]:
    return [c for c in real_panel.columns if c not in ("symbol", "date") and not c.startswith("fwd_")]


def gates(dataset: pd.DataFrame, feature_columns: list[str], **kw) -> pd.DataFrame:
    report = run_quality_gates(dataset, feature_columns=feature_columns, label=LABEL, horizon_days=5, **kw)
    return report.results.set_index("gate")


def status(dataset: pd.DataFrame, feature_columns: list[str], gate: str, **kw) -> str:
    return gates(dataset, feature_columns, **kw).loc[gate, "status"]


# -- the real panel --------------------------------------------------------------------------
def test_real_panel_passes_with_a_warm_up_warning(real_panel, features) -> None:
    report = run_quality_gates(real_panel, feature_columns=features, label=LABEL, horizon_days=5)
    r = report.results.set_index("gate")
    assert list(r.index) == GATES
    assert report.passed and report.status == "warning"
    # mom_12_1 needs 253 days of history, dist_52w_high 252: ~10% of 10 years is warm-up.
    assert r.loc["completeness", "status"] == "warning"
    assert 0.80 < r.loc["completeness", "value"] < 0.95
    assert r.loc["completeness", "detail"].startswith("worst: mom_12_1")
    assert (r.drop(index="completeness")["status"] == "pass").all()
    assert 0.45 < r.loc["label_balance", "value"] < 0.55
    assert r.loc["label_count", "value"] == real_panel[LABEL].notna().sum()
    assert report.as_of == real_panel["date"].max() and not report.as_of_given
    assert enforce(report) is report
    with pytest.raises(QualityGateError, match="completeness"):
        enforce(report, fail_on="warning")


def test_sparse_features_can_be_excluded_and_warm_up_trimmed(real_panel, features) -> None:
    sparse = ["mom_12_1", "mom_12_1_rank", "dist_52w_high", "dist_52w_high_rank", "not_a_feature"]
    r = gates(real_panel, features, exclude_completeness=sparse)
    assert r.loc["completeness", "status"] == "pass"
    assert "excluded: mom_12_1, mom_12_1_rank, dist_52w_high, dist_52w_high_rank" in r.loc["completeness", "detail"]
    dates = np.sort(real_panel["date"].unique())
    trimmed = real_panel[real_panel["date"] >= dates[252]]
    report = run_quality_gates(trimmed, feature_columns=features, label=LABEL, horizon_days=5)
    assert report.status == "pass", report.to_markdown()


# -- completeness ----------------------------------------------------------------------------
def blank_to_share(frame: pd.DataFrame, column: str, share: float, seed: int = 0) -> pd.DataFrame:
    """Copy of ``frame`` with ``column`` blanked at random rows until exactly ``share`` is present."""
    out = frame.copy()
    present = np.flatnonzero(out[column].notna().to_numpy())
    target = round(share * len(out))
    assert target / len(out) == share and target <= len(present)
    drop = np.random.default_rng(seed).choice(present, size=len(present) - target, replace=False)
    out.loc[out.index[drop], column] = np.nan
    return out


@pytest.mark.parametrize(("share", "expected"), [
    (0.95, "pass"), (0.9499, "warning"), (0.80, "warning"), (0.7999, "critical"), (0.0, "critical"),
])
def test_completeness_boundaries(real_panel, share, expected) -> None:
    frame = real_panel.iloc[:40000]  # divisible by 10^4, so every share above is exact
    cols = ["rsi_14", "ret_5d_rank"]
    corrupted = blank_to_share(frame, "rsi_14", share)
    r = gates(corrupted, cols)
    assert r.loc["completeness", "status"] == expected
    assert r.loc["completeness", "value"] == share
    assert r.loc["completeness", "detail"].startswith("worst: rsi_14")


def test_blanked_feature_is_critical_unless_excluded(real_panel, features) -> None:
    corrupted = real_panel.assign(rsi_14=np.nan)
    report = run_quality_gates(corrupted, feature_columns=features, label=LABEL, horizon_days=5)
    assert not report.passed
    assert report.results.set_index("gate").loc["completeness", "value"] == 0.0
    with pytest.raises(QualityGateError, match=r"completeness = 0 \(critical: < 0.8") as exc:
        enforce(report)
    assert "rsi_14" in str(exc.value) and "< 0.8" in str(exc.value)
    assert exc.value.report is report and isinstance(exc.value, StageError)
    assert status(corrupted, features, "completeness", exclude_completeness=["rsi_14"]) == "warning"


# -- outliers ----------------------------------------------------------------------------------
def test_robust_z_by_hand() -> None:
    x = np.array([float(v) for v in range(1, 20)] + [1000.0, np.nan, np.inf])
    z = robust_z(x)
    # 20 finite values: median 10.5, MAD = 5 -> 7.413; q10 = 2.9, q90 = 18.1 -> 15.2 / 2.5631 = 5.93
    assert robust_scale(x) == pytest.approx(1.4826 * 5)
    np.testing.assert_allclose(z[:20], (x[:20] - 10.5) / (1.4826 * 5))
    assert np.isnan(z[20]) and z[21] == np.inf
    # Zero-inflated (MAD 0): the inter-decile range gives the scale, q90 - q10 = 2.
    zi = np.array([0.0] * 12 + [1.0, 2.0] * 4)
    assert np.median(np.abs(zi)) == 0 and robust_scale(zi) == pytest.approx(2 / 2.5631)
    assert np.isnan(robust_z(np.zeros(20))).all()  # no spread at all: no scale
    assert np.isnan(robust_z(np.array([0.0] * 19 + [5.0]))).all()  # 95% equal: both terms 0


def test_ordinary_fed_funds_moves_are_not_outliers_but_corrupt_ones_are() -> None:
    """The real Fed funds 3-month change (zero-inflated in 2009-2015) has a MAD of 0.06 pp: the
    MAD alone flagged 7% of 1999-2019 months; the inter-decile scale flags none, and still
    finds values corrupted by a unit error (percent stored as basis points)."""
    from tests.conftest import SHARED_DATA, require_shared
    from vfr.features.macro import fred_monthly_features

    fred = pd.read_parquet(require_shared(SHARED_DATA / "macro" / "fred_md.parquet"))
    monthly = fred_monthly_features(fred)
    x = monthly.loc[monthly["month"] >= "1999-01-01", "fedfunds_chg_3m"].dropna().to_numpy()
    med = np.median(x)
    mad_only = np.abs(x - med) / (1.4826 * np.median(np.abs(x - med)))
    assert np.mean(mad_only > 10) > 0.05  # the old rule: critical on ordinary easing cycles
    assert np.mean(np.abs(robust_z(x)) > 10) == 0.0
    bad = x.copy()
    bad[::12] *= 100.0  # 8% of months in basis points instead of percentage points
    assert np.mean(np.abs(robust_z(bad)) > 10) > 0.05


@pytest.mark.parametrize(("n_extreme", "expected"), [
    (0, "pass"), (400, "pass"), (401, "warning"), (2000, "warning"), (2001, "critical"),
])
def test_outlier_boundaries(real_panel, n_extreme, expected) -> None:
    # A percentile rank lies in [0, 1]: its real values are never outliers (|z| < 1.4).
    frame = real_panel[real_panel["ret_20d_rank"].notna()].iloc[:40000].copy()
    rows = np.random.default_rng(1).choice(len(frame), size=n_extreme, replace=False)
    frame.iloc[rows, frame.columns.get_loc("ret_20d_rank")] = 1000.0
    r = gates(frame, ["ret_20d_rank"])
    assert r.loc["outlier_share", "value"] == n_extreme / 40000
    assert r.loc["outlier_share", "status"] == expected


def test_injected_extremes_on_a_real_return_are_critical(real_panel, features) -> None:
    frame = real_panel.copy()
    rows = np.random.default_rng(2).choice(len(frame), size=len(frame) // 10, replace=False)
    col = frame.columns.get_loc("ret_5d")
    frame.iloc[rows, col] = frame.iloc[rows, col] * 1e4 + 50.0  # a 5000% weekly return and more
    report = run_quality_gates(frame, feature_columns=features, label=LABEL, horizon_days=5)
    r = report.results.set_index("gate")
    assert r.loc["outlier_share", "status"] == "critical"
    assert r.loc["outlier_share", "detail"].split("worst: ")[1].startswith("ret_5d ")
    with pytest.raises(QualityGateError, match=r"outlier_share = 0\.\d+ \(critical: > 0\.05"):
        enforce(report)


def test_infinite_values_are_outliers_and_binary_features_skipped(real_panel) -> None:
    frame = real_panel.assign(up_day=(real_panel["ret_1d"] > 0).astype(float))
    r = gates(frame, ["up_day", "ret_20d_rank"])
    assert "skipped (no robust scale or binary): up_day" in r.loc["outlier_share", "detail"]
    assert r.loc["outlier_share", "value"] == 0.0
    frame.loc[frame.index[:1000], "ret_20d_rank"] = np.inf
    r = gates(frame, ["ret_20d_rank"])
    assert r.loc["outlier_share", "value"] == pytest.approx(1000 / frame["ret_20d_rank"].notna().sum())
    assert r.loc["outlier_share", "status"] == "warning"


def test_market_wide_features_are_judged_over_time(real_panel) -> None:
    """A market-wide value counts once per date: one bad date among 2,500 is 0.04% of the
    dates, whatever the number of stocks; across rows it would weigh as much as a stock."""
    frame = real_panel.copy()
    dates = np.sort(frame["date"].unique())
    rng = np.random.default_rng(5)
    level = pd.Series(np.cumsum(rng.normal(0, 0.1, len(dates))), index=dates)
    frame["vix"] = frame["date"].map(level).to_numpy()
    assert market_wide(["vix", "ret_5d", "vix_rank", "is_january"]) == ("vix", "is_january")
    r = gates(frame, ["vix"], market_wide=["vix"])
    assert r.loc["outlier_share", "value"] == 0.0
    assert f"vix 0.0000 over {len(dates)} dates" in r.loc["outlier_share", "detail"]
    bad_dates = dates[rng.choice(len(dates), size=len(dates) * 8 // 100, replace=False)]
    frame.loc[frame["date"].isin(bad_dates), "vix"] = 1e6
    r = gates(frame, ["vix"], market_wide=["vix"])
    assert r.loc["outlier_share", "value"] == pytest.approx(len(bad_dates) / len(dates))
    assert r.loc["outlier_share", "status"] == "critical"
    share = len(bad_dates) / len(dates)
    assert f"vix {share:.4f} > 0.05 (critical) over {len(dates)} dates" in r.loc["outlier_share", "detail"]
    with pytest.raises(ValueError, match="dates are required"):
        from vfr.ml.quality import outlier_gate
        outlier_gate({"vix": frame["vix"].to_numpy(float)}, GateThresholds(), market_wide=["vix"])


def test_thresholds_come_from_the_settings(real_panel, features, monkeypatch) -> None:
    from vfr.config import Settings

    monkeypatch.setenv("VFR_GATE_MIN_LABELLED_ROWS", str(10**9))
    monkeypatch.setenv("VFR_GATE_BALANCE_WARNING", "[0.45, 0.55]")
    t = GateThresholds.from_settings(Settings())
    assert t.min_labelled_rows == 10**9 and t.balance_warning == (0.45, 0.55)
    r = gates(real_panel, features, thresholds=t)
    assert r.loc["label_count", "status"] == "critical"
    assert r.loc["label_count", "critical"] == f"< {10**9}"
    monkeypatch.setenv("VFR_GATE_OUTLIER_CRITICAL", "0.001")  # below the warning: refused
    with pytest.raises(ValueError, match="outlier_critical must be >= outlier_warning"):
        GateThresholds.from_settings(Settings())


# -- labels ------------------------------------------------------------------------------------
def with_positive_share(frame: pd.DataFrame, n_pos: int) -> pd.DataFrame:
    """The first 10 000 labelled rows with exactly ``n_pos`` labels forced to 1 (rest 0)."""
    out = frame[frame[LABEL].notna()].iloc[:10000].copy()
    y = np.zeros(len(out))
    y[np.random.default_rng(3).choice(len(out), size=n_pos, replace=False)] = 1.0
    out[LABEL] = y
    return out


@pytest.mark.parametrize(("n_pos", "expected"), [
    (5000, "pass"), (4000, "pass"), (6000, "pass"), (3999, "warning"), (6001, "warning"),
    (3000, "warning"), (7000, "warning"), (2999, "critical"), (7001, "critical"), (10000, "critical"),
])
def test_label_balance_boundaries(real_panel, n_pos, expected) -> None:
    r = gates(with_positive_share(real_panel, n_pos), ["ret_5d"])
    assert r.loc["label_balance", "value"] == n_pos / 10000
    assert r.loc["label_balance", "status"] == expected


def test_one_sided_labels_stop_training(real_panel, features) -> None:
    report = run_quality_gates(real_panel.assign(**{LABEL: real_panel[LABEL].where(real_panel[LABEL].isna(), 1.0)}),
                               feature_columns=features, label=LABEL, horizon_days=5)
    with pytest.raises(QualityGateError, match=r"label_balance = 1 \(critical: outside \[0.3, 0.7\]"):
        enforce(report)


def test_too_few_labelled_rows(real_panel) -> None:
    small = real_panel[real_panel[LABEL].notna()].iloc[:999]
    r = gates(small, ["ret_5d"])
    assert r.loc["label_count", "status"] == "critical" and r.loc["label_count", "value"] == 999
    assert gates(small, ["ret_5d"], thresholds=GateThresholds(min_labelled_rows=999)).loc[
        "label_count", "status"] == "pass"
    none = real_panel.assign(**{LABEL: np.nan})
    r = gates(none, ["ret_5d"])
    assert r.loc["label_balance", "status"] == "critical" and r.loc["label_count", "value"] == 0


# -- temporal integrity --------------------------------------------------------------------------
def test_duplicate_row_is_critical(real_panel, features) -> None:
    frame = pd.concat([real_panel, real_panel.iloc[[1234]]], ignore_index=True)
    report = run_quality_gates(frame, feature_columns=features, label=LABEL, horizon_days=5)
    r = report.results.set_index("gate")
    assert r.loc["duplicate_rows", "value"] == 1 and r.loc["duplicate_rows", "status"] == "critical"
    sym, day = real_panel.loc[1234, ["symbol", "date"]]
    assert f"({sym}, {day.date()})" in r.loc["duplicate_rows", "detail"]
    with pytest.raises(QualityGateError, match="duplicate_rows = 1"):
        enforce(report)


def test_unparseable_and_missing_dates_are_critical(real_panel) -> None:
    frame = real_panel.assign(date=real_panel["date"].dt.strftime("%Y-%m-%d").astype(object))
    assert status(frame, ["ret_5d"], "unparseable_dates") == "pass"  # ISO strings are fine
    frame.loc[10, "date"] = "2015-13-45"
    frame.loc[20, "date"] = None
    r = gates(frame, ["ret_5d"])
    assert r.loc["unparseable_dates", "value"] == 2 and r.loc["unparseable_dates", "status"] == "critical"
    assert "2015-13-45" in r.loc["unparseable_dates", "detail"]
    assert r.loc["duplicate_rows", "status"] == "pass"  # the other gates still run on valid rows


def test_feature_date_after_as_of_is_critical(real_panel, features) -> None:
    as_of = real_panel["date"].max()
    frame = real_panel.copy()
    last = frame.index[frame["date"] == as_of][0]  # newest row: its label is unknown
    assert np.isnan(frame.loc[last, LABEL])
    frame.loc[last, "date"] = as_of + pd.Timedelta(days=3)
    r = gates(frame, features, as_of=as_of)
    assert r.loc["future_feature_dates", "value"] == 1
    assert r.loc["future_feature_dates", "status"] == "critical"
    assert r.loc["label_lookahead", "status"] == "pass"
    assert status(frame, features, "future_feature_dates") == "pass"  # default as_of: last date


@pytest.fixture(scope="module")
def cut_panel(real_panel: pd.DataFrame, sp500_raw_small: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Panel cut at 2019-06-28 with (a) labels from all prices (leaky), (b) labels from prices up
    to the cut only (what was knowable at the cut)."""
    cut = pd.Timestamp("2019-06-28")
    feats = real_panel.loc[real_panel["date"] <= cut, [c for c in real_panel.columns if not c.startswith("fwd_")]]
    prices = adjust_prices(sp500_raw_small)
    leaky = build_dataset(feats, make_labels(prices), "1w")
    honest = build_dataset(feats, make_labels(prices[prices["date"] <= cut]), "1w")
    return leaky, honest


def test_labels_ending_after_as_of_are_look_ahead(cut_panel, features) -> None:
    leaky, honest = cut_panel
    cut = pd.Timestamp("2019-06-28")
    report = run_quality_gates(leaky, feature_columns=features, label=LABEL, horizon_days=5, as_of=cut)
    r = report.results.set_index("gate")
    # The last 5 trading dates (2019-06-24..28) of 20 stocks need closes of July 2019.
    assert r.loc["label_lookahead", "value"] == 5 * 20
    assert r.loc["label_lookahead", "status"] == "critical"
    assert "rows from 2019-06-24 to 2019-06-28" in r.loc["label_lookahead", "detail"]
    assert r.loc["future_feature_dates", "status"] == "pass"
    with pytest.raises(QualityGateError, match="label_lookahead = 100"):
        enforce(report)
    assert run_quality_gates(honest, feature_columns=features, label=LABEL, horizon_days=5,
                             as_of=cut).results.set_index("gate").loc["label_lookahead", "status"] == "pass"


def test_label_windows_past_the_calendar_are_extrapolated_in_business_days(cut_panel) -> None:
    leaky, _ = cut_panel
    # Trained on Tuesday 2019-07-02: 06-24 and 06-25 labels end by then (07-01, 07-02 as a
    # lower bound), those of 06-26, 06-27, 06-28 need later closes.
    r = gates(leaky, ["ret_5d"], as_of="2019-07-02")
    assert r.loc["label_lookahead", "value"] == 3 * 20
    assert gates(leaky, ["ret_5d"], as_of="2019-08-30").loc["label_lookahead", "status"] == "pass"
    ends = label_window_ends(pd.Series(pd.to_datetime(["2019-06-27", "2019-06-28", "2019-06-24"])), 1)
    assert list(ends) == [pd.Timestamp("2019-06-28"), pd.Timestamp("2019-07-01"), pd.Timestamp("2019-06-27")]


@pytest.mark.parametrize(("last_dropped", "missing", "expected"), [
    ("2015-03-16", 10, "pass"), ("2015-03-17", 11, "warning"),
])
def test_calendar_gap_boundary(real_panel, last_dropped, missing, expected) -> None:
    # March 2015 has no exchange holiday: every weekday dropped is a trading date dropped.
    frame = real_panel[~real_panel["date"].between("2015-03-03", last_dropped)]
    r = gates(frame, ["ret_5d"])
    assert r.loc["calendar_gap", "value"] == missing
    assert r.loc["calendar_gap", "status"] == expected
    assert "between 2015-03-02 and" in r.loc["calendar_gap", "detail"]
    report = run_quality_gates(frame, feature_columns=["ret_5d"], label=LABEL, horizon_days=5)
    assert report.passed  # a gap is a warning, never critical


# -- report, errors, thresholds ----------------------------------------------------------------------
def test_report_serialises_and_reads(real_panel, features) -> None:
    frame = pd.concat([real_panel, real_panel.iloc[[7]]], ignore_index=True).assign(rsi_14=np.nan)
    report = run_quality_gates(frame, feature_columns=features, label=LABEL, horizon_days=5, as_of="2019-12-31")
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["status"] == "critical" and d["passed"] is False and d["as_of"] == "2019-12-31T00:00:00"
    assert [g["gate"] for g in d["gates"]] == GATES
    assert {g["gate"] for g in d["gates"] if g["status"] == "critical"} == {"completeness", "duplicate_rows"}
    md = report.to_markdown()
    assert md.startswith("# Data quality report: FAILED")
    assert "| completeness | **CRITICAL** | 0 |" in md and "| duplicate_rows | **CRITICAL** | 1 |" in md
    with pytest.raises(QualityGateError) as exc:
        enforce(report)
    assert "(2 gates)" in str(exc.value)
    assert "completeness" in str(exc.value) and "duplicate_rows" in str(exc.value)


def test_bad_inputs_name_what_is_wrong(real_panel) -> None:
    with pytest.raises(DataValidationError, match="'nope'"):
        run_quality_gates(real_panel, feature_columns=["nope"], label=LABEL, horizon_days=5)
    with pytest.raises(DataValidationError, match="'symbol'.*not numeric"):
        run_quality_gates(real_panel, feature_columns=["symbol"], label=LABEL, horizon_days=5)
    with pytest.raises(ValueError, match="1w horizon"):
        run_quality_gates(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon_days=21)
    with pytest.raises(ValueError, match="horizon_days"):
        run_quality_gates(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon_days=0)
    with pytest.raises(ValueError, match="feature_columns is empty"):
        run_quality_gates(real_panel, feature_columns=[], label=LABEL, horizon_days=5)
    with pytest.raises(ValueError, match="as_of"):
        run_quality_gates(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon_days=5, as_of="someday")


def test_thresholds_are_validated_data() -> None:
    t = GateThresholds()
    assert (t.completeness_warning, t.completeness_critical) == (0.95, 0.80)
    assert (t.outlier_z, t.outlier_warning, t.outlier_critical) == (10.0, 0.01, 0.05)
    assert (t.balance_warning, t.balance_critical) == ((0.40, 0.60), (0.30, 0.70))
    assert (t.min_labelled_rows, t.max_gap_business_days) == (1000, 10)
    with pytest.raises(ValueError, match="completeness_critical must be <="):
        GateThresholds(completeness_critical=0.99)
    with pytest.raises(ValueError, match="balance ranges must nest"):
        GateThresholds(balance_warning=(0.2, 0.6))
    with pytest.raises(ValueError, match=r"outlier_warning must be a share"):
        GateThresholds(outlier_warning=2.0)
