"""Early-signal model: point-in-time event dataset, embargoed splits, training, and the
serving fallback chain (real LightGBM models, real earnings and prices when present)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SMALL_SYMBOLS, require_shared
from vfr.data import adjust_prices
from vfr.earnings import (
    PREDICTION_COLUMNS,
    EarlySignalModel,
    EarlySignalPredictor,
    asof_dates,
    build_event_dataset,
    evaluate_signal,
    model_feature_columns,
    past_surprise_features,
    split_events,
    train_early_signal,
)
from vfr.features import build_features

EARNINGS = SHARED_DATA / "earnings" / "earnings_surprises.parquet"


def _reports() -> pd.DataFrame:
    fde = pd.to_datetime(["2015-03-31", "2015-06-30", "2015-09-30", "2015-12-31"])
    rep = pd.to_datetime(["2015-04-20", "2015-07-20", "2015-10-19", "2016-01-25"])
    return pd.DataFrame({"symbol": "AAA", "fiscal_date_ending": fde, "reported_date": rep,
                         "reported_eps": [1.0, 1.1, 1.2, 1.3], "estimated_eps": 1.0,
                         "surprise": [0.0, 0.1, 0.2, 0.3],
                         "surprise_pct": [0.0, 10.0, 20.0, 30.0], "report_time": "pre-market"})


def test_asof_join_never_uses_a_report_before_its_reported_date():
    rep = _reports()
    from vfr.earnings import clean_reports

    clean = clean_reports(rep)
    q = pd.to_datetime(["2015-04-19", "2015-04-20", "2015-04-21", "2015-07-20", "2016-02-01"])
    out = past_surprise_features(clean, ["AAA"] * 5, q)
    assert np.isnan(out.loc[0, "last_surprise_pct"]) and out.loc[0, "n_past_reports"] == 0
    assert np.isnan(out.loc[1, "last_surprise_pct"])  # on the reported date itself: not yet
    assert out.loc[2, "last_surprise_pct"] == 0.0 and out.loc[2, "n_past_reports"] == 1
    assert out.loc[3, "last_surprise_pct"] == 0.0  # July report not usable on its own day
    assert out.loc[4, "last_surprise_pct"] == 30.0 and out.loc[4, "n_past_reports"] == 4
    assert out.loc[4, "mean_surprise_pct_4"] == pytest.approx(15.0)
    assert out.loc[4, "beat20_share_4"] == pytest.approx(0.25)  # only 30% is > 20
    assert out.loc[2, "days_since_last_report"] == 1.0


def test_bad_dated_reports_are_dropped():
    rep = _reports()
    rep.loc[1, "reported_date"] = rep.loc[1, "fiscal_date_ending"] + pd.Timedelta(days=3)
    from vfr.earnings import clean_reports

    assert len(clean_reports(rep)) == 3


def test_asof_dates_are_lead_trading_days_before():
    cal = pd.bdate_range("2015-01-01", "2015-03-31")
    rep = pd.Series(pd.to_datetime(["2015-02-16", "2015-02-14", "2015-01-05", "2015-06-01"]))
    got = asof_dates(rep, cal, 7)
    assert got[0] == cal[cal.get_loc(pd.Timestamp("2015-02-16")) - 7]
    assert got[1] == got[0]  # Saturday report -> Monday is its trading day
    assert pd.isna(got[2]) and pd.isna(got[3])  # before / after the calendar


@pytest.fixture(scope="module")
def events() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    require_shared(EARNINGS)
    path = require_shared()
    raw = pd.read_parquet(path, filters=[("symbol", "in", SMALL_SYMBOLS),
                                         ("date", ">=", pd.Timestamp("2008-01-01"))])
    prices = adjust_prices(raw.reset_index(drop=True))
    earnings = pd.read_parquet(EARNINGS, filters=[("symbol", "in", SMALL_SYMBOLS)])
    features = build_features(prices)
    ev = build_event_dataset(earnings, prices, features=features)
    return ev, earnings, features


def test_event_dataset_is_point_in_time(events):
    ev, earnings, features = events
    assert len(ev) > 500 and ev["label"].isin([0.0, 1.0]).all()
    assert (ev["label"] == (ev["surprise_pct"] > 20).astype(float)).all()
    assert (ev["asof_date"] < ev["reported_date"]).all()
    gap = (ev["reported_date"] - ev["fiscal_date_ending"]).dt.days
    assert (gap >= 5).all()
    # the latest report behind each row's history is strictly before the as-of date
    e = earnings.sort_values("reported_date")
    for _, row in ev.sample(200, random_state=0).iterrows():
        known = e[(e["symbol"] == row["symbol"]) & (e["reported_date"] < row["asof_date"])
                  & ((e["reported_date"] - e["fiscal_date_ending"]).dt.days >= 5)]
        if known.empty:
            assert np.isnan(row["last_surprise_pct"])
        else:
            assert row["last_surprise_pct"] == pytest.approx(known["surprise_pct"].iloc[-1],
                                                             nan_ok=True)
    # technical features are the build_features row at the as-of date
    f = features.set_index(["symbol", "date"])
    r = ev.iloc[100]
    assert r["ret_20d"] == pytest.approx(float(f.loc[(r["symbol"], r["asof_date"]), "ret_20d"]))


def test_changing_the_report_and_later_ones_leaves_features_unchanged(events):
    ev, earnings, features = events
    row = ev.iloc[len(ev) // 2]
    poisoned = earnings.copy()
    later = (poisoned["symbol"] == row["symbol"]) & (poisoned["reported_date"] >= row["asof_date"])
    poisoned.loc[later, ["surprise_pct", "surprise", "reported_eps"]] = 9999.0
    prices_dates = pd.DataFrame({"symbol": features["symbol"], "date": features["date"],
                                 "close": 1.0})
    a = build_event_dataset(earnings, prices_dates, features=features)
    b = build_event_dataset(poisoned, prices_dates, features=features)
    key = (a["symbol"] == row["symbol"]) & (a["reported_date"] == row["reported_date"])
    cols = model_feature_columns()
    pd.testing.assert_frame_equal(a.loc[key, cols].reset_index(drop=True),
                                  b.loc[key.to_numpy(), cols].reset_index(drop=True))
    assert b.loc[key.to_numpy(), "surprise_pct"].iloc[0] == 9999.0


def test_split_has_embargo_and_no_label_leak(events):
    ev, *_ = events
    sp = split_events(ev["reported_date"], validation_start="2014-01-01",
                      test_start="2016-01-01")
    tr, va, te = (ev[m] for m in (sp.train, sp.validation, sp.test))
    assert not (sp.train & sp.validation).any() and not (sp.validation & sp.test).any()
    assert tr["reported_date"].max() < va["asof_date"].min()  # training labels all published
    assert va["reported_date"].max() < te["asof_date"].min()
    assert (va["reported_date"].min() - tr["reported_date"].max()).days >= 14
    frac = split_events(ev["reported_date"], embargo_days=10)
    assert ev.loc[frac.train, "reported_date"].max() < ev.loc[frac.validation, "reported_date"].min()


@pytest.fixture(scope="module")
def models(events, tmp_path_factory):
    ev, *_ = events
    sp = split_events(ev["reported_date"], validation_start="2014-01-01",
                      test_start="2016-01-01")
    v1 = train_early_signal(ev, sp, version="1", num_boost_round=200)
    # v2 expects an extra column that serving rows lack -> fails at prediction time
    ev2 = ev.assign(consensus_revision=0.0)
    v2 = train_early_signal(ev2, sp, version="2", num_boost_round=200,
                            features=[*model_feature_columns(), "consensus_revision"])
    return ev, sp, v1, v2, tmp_path_factory.mktemp("models")


def test_training_evaluation_and_persistence(models):
    ev, sp, v1, _, folder = models
    assert 0 < v1.threshold < 1
    te = ev[sp.test]
    p = v1.predict_proba(te)
    assert p.shape == (len(te),) and np.isfinite(p).all()
    m = evaluate_signal(te["label"].to_numpy(), p, v1.threshold, te["ret_to_report"].to_numpy())
    for key in ("roc_auc", "precision", "recall", "base_rate", "precision_top_decile",
                "ret_flagged", "ret_unflagged"):
        assert key in m
    assert 0 < m["base_rate"] < 0.5
    loaded = EarlySignalModel.load(v1.save(folder / "v1"))
    np.testing.assert_allclose(loaded.predict_proba(te), p)
    assert loaded.threshold == v1.threshold and loaded.features == v1.features


def test_fallback_chain_answers_in_each_failure(models):
    ev, sp, v1, v2, _ = models
    rows = ev[sp.test].head(4).copy()
    # serving model answers when it can
    ok = EarlySignalPredictor([v2]).predict(rows.assign(consensus_revision=0.0))
    assert list(ok.columns) == list(PREDICTION_COLUMNS)
    assert (ok["source"] == "model:v2").all() and ok["probability"].notna().all()
    assert (ok["reason"] == "").all() and ok["confidence"].between(0, 1).all()
    # 1) serving model fails -> previous version
    chain = EarlySignalPredictor([v2, v1])
    out = chain.predict(rows)
    assert (out["source"] == "model:v1").all() and (out["fallback_level"] == 1).all()
    assert out["reason"].str.contains("model:v2 failed: KeyError").all()
    # 2) every model declines (features missing) -> rule on the last surprise
    feats = [c for c in model_feature_columns()]
    blank = rows.copy()
    blank[feats] = np.nan
    blank["last_surprise_pct"] = [30.0, 5.0, 16.0, -4.0]
    out = chain.predict(blank)
    assert (out["source"] == "rule").all()
    assert list(out["prediction"]) == [True, False, True, False]
    assert (out["confidence_level"] == "LOW").all() and (out["fallback_level"] == 2).all()
    assert list(out["probability"]) == [0.7, pytest.approx(0.3), 0.7, pytest.approx(0.3)]
    assert out["reason"].str.contains("model:v1 declined").all()
    # 2b) more than 10% of the inputs missing is a failure, not a guess: 4 of 30 features blank
    some = rows.copy()
    some[feats[:4]] = np.nan
    out = chain.predict(some)
    assert (out["source"] != "model:v1").all() and out["reason"].str.contains("features missing").all()
    # 3) nothing known -> explicit null with the reason
    blank["last_surprise_pct"] = np.nan
    out = chain.predict(blank)
    assert (out["source"] == "none").all() and out["prediction"].isna().all()
    assert out["reason"].str.contains("rule declined: no past surprise known").all()
    assert (out["confidence"] == 0).all() and out["error"].all() and (out["fallback_level"] == 3).all()
    # 4) no model at all -> rule, saying so
    out = EarlySignalPredictor([]).predict(rows)
    assert set(out["source"]) <= {"rule", "none"}
    assert out["reason"].str.startswith("no model available").all()


@pytest.mark.slow
def test_development_set_figures():
    """Reproduces docs/early_signal.md: test reports 2015-2019 (about 40 s)."""
    require_shared(EARNINGS)
    from tests.conftest import SP500_PRICES, SP500_UNIVERSE

    prices = adjust_prices(pd.read_parquet(require_shared(SP500_PRICES)))
    sectors = pd.read_csv(require_shared(SP500_UNIVERSE)).rename(
        columns={"Symbol": "symbol", "Sector": "sector"})
    ev = build_event_dataset(pd.read_parquet(EARNINGS), prices, sectors=sectors)
    sp = split_events(ev["reported_date"], validation_start="2012-01-01",
                      test_start="2015-01-01", test_end="2019-12-31")
    model = train_early_signal(ev, sp)
    te = ev[sp.test]
    m = evaluate_signal(te["label"].to_numpy(), model.predict_proba(te), model.threshold,
                        te["ret_to_report"].to_numpy())
    assert 8000 < m["n"] < 9000 and 0.10 < m["base_rate"] < 0.13
    assert m["roc_auc"] > 0.78 and m["precision_top_decile"] > 2.5 * m["base_rate"]
