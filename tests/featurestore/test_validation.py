"""Validation rejects each kind of bad vector; the quality score follows its formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.featurestore import (
    FeatureSpec,
    FeatureValidationError,
    ValidationConfig,
    validate_vectors,
)

CFG = ValidationConfig(
    specs=(FeatureSpec("rsi", 0, 100), FeatureSpec("ret", -1, 10, nullable=False),
           FeatureSpec("vol", 0, None), FeatureSpec("z")),
    freshness_warning=pd.Timedelta(hours=1), freshness_critical=pd.Timedelta(hours=3),
    min_completeness=0.6, source_reliability={"exchange": 1.0, "scraper": 0.2},
    default_reliability=0.5)
NOW = pd.Timestamp("2024-03-05 21:30")


def _good(n: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"symbol": ["AAA"] * n, "date": pd.Timestamp("2024-03-05"),
                         "known_at": pd.Timestamp("2024-03-05 21:00"), "rsi": 55.0,
                         "ret": 0.01, "vol": 0.2, "z": 0.3})


def test_good_vector_passes_with_full_quality():
    res = validate_vectors(_good(), CFG, source="exchange", now=NOW)
    assert res.valid.all() and res.errors == [[]]
    assert res.quality.loc[0, "quality_score"] == pytest.approx(1.0)
    assert res.quality.loc[0, "freshness_status"] == "ok"


@pytest.mark.parametrize(("change", "code"), [
    ({"rsi": np.inf}, "inf"),
    ({"vol": -np.inf}, "inf"),
    ({"ret": np.nan}, "nan"),                 # not nullable
    ({"rsi": 101.0}, "range"),
    ({"vol": -0.1}, "range"),
    ({"rsi": np.nan, "z": np.nan}, "incomplete"),  # 2/4 present < 0.6
    ({"known_at": pd.Timestamp("2024-03-05 17:00")}, "stale"),  # 4.5 h old at NOW
    ({"known_at": pd.Timestamp("2024-03-04 12:00")}, "key"),    # known before its day
    ({"symbol": None}, "key"),
])
def test_each_kind_of_bad_vector_is_rejected(change, code):
    bad = _good(2)
    for col, val in change.items():
        bad[col] = bad[col].astype(object) if val is None else bad[col]
        bad.loc[1, col] = val
    res = validate_vectors(bad, CFG, source="exchange", now=NOW)
    assert list(res.valid) == [True, False]
    assert code in res.errors[1] and res.errors[0] == []
    assert res.rejected_counts()[code] == 1


@pytest.mark.parametrize("mutate", [
    lambda f: f.drop(columns="vol"),
    lambda f: f.drop(columns="known_at"),
    lambda f: f.assign(rsi="55"),
    lambda f: f.assign(rsi=True),
    lambda f: f.assign(known_at=f["known_at"].dt.tz_localize("UTC")),
    lambda f: f.assign(date="2024-03-05"),
])
def test_schema_and_type_errors_reject_the_frame(mutate):
    with pytest.raises(FeatureValidationError):
        validate_vectors(mutate(_good()), CFG, now=NOW)


def test_quality_score_formula_and_freshness_levels():
    f = _good(3)
    f.loc[1, "z"] = np.nan  # completeness 3/4, validity 3/4
    f.loc[2, "known_at"] = pd.Timestamp("2024-03-05 19:30")  # 2 h old: warning, freshness 0.5
    res = validate_vectors(f, CFG, source="scraper", now=NOW)
    q = res.quality
    assert list(q["freshness_status"]) == ["ok", "ok", "warning"]
    assert q.loc[2, "freshness"] == pytest.approx(0.5)
    assert q.loc[1, "quality_score"] == pytest.approx(0.35 * 0.75 + 0.25 + 0.25 * 0.2
                                                      + 0.15 * 0.75)
    assert q.loc[2, "quality_score"] == pytest.approx(0.35 + 0.25 * 0.5 + 0.25 * 0.2 + 0.15)
    # unknown source -> default reliability; offline (no now): age = publication lag
    res = validate_vectors(_good(), CFG, source="who")
    assert res.quality.loc[0, "source_reliability"] == 0.5
    assert res.quality.loc[0, "freshness"] == 1.0
