"""Deploy rules are a table evaluated in order; paired tests agree with scipy and hand algebra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr.ml.deploy import (
    DEPLOY_RULES,
    decide,
    paired_test,
    rules_from_records,
    rules_table,
)

CHAMP = {"roc_auc": 0.52, "sharpe": 0.8}


@pytest.mark.parametrize(("auc", "sharpe", "action", "rule"), [
    (0.57, 0.1, "deploy", "large AUC gain"),            # +0.05, worse Sharpe: still deploys
    (0.545, 0.9, "deploy", "AUC gain with better Sharpe"),
    (0.545, 0.7, "ab_test", "small AUC gain"),          # +0.025 but worse Sharpe
    (0.53, 2.0, "ab_test", "small AUC gain"),           # +0.01
    (0.529, 2.0, "keep", "no rule matched"),
    (0.545, float("nan"), "ab_test", "small AUC gain"),  # unknown Sharpe is never "better"
    (float("nan"), 2.0, "keep", "no rule matched"),
])
def test_rules_table(auc, sharpe, action, rule) -> None:
    d = decide({"roc_auc": auc, "sharpe": sharpe}, CHAMP)
    assert (d.action, d.rule) == (action, rule)


def test_rules_are_data() -> None:
    table = rules_table()
    assert list(table.columns) == ["name", "min_auc_gain", "require_better_sharpe", "action"]
    assert list(table["min_auc_gain"]) == [0.05, 0.02, 0.01]
    assert rules_from_records(table.to_dict("records")) == DEPLOY_RULES
    strict = rules_from_records([{"name": "only big", "min_auc_gain": 0.1, "require_better_sharpe": True,
                                  "action": "deploy"}])
    assert decide({"roc_auc": 0.6, "sharpe": 1.0}, CHAMP, strict).action == "keep"
    with pytest.raises(ValueError, match="unknown action"):
        rules_from_records([{"name": "x", "min_auc_gain": 0, "require_better_sharpe": False, "action": "yolo"}])


def _series(seed: int, shift: float, n: int = 500) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2015-01-01", periods=n)
    common = rng.normal(0.02, 0.1, n)
    return (pd.Series(common + shift + rng.normal(0, 0.02, n), idx), pd.Series(common + rng.normal(0, 0.02, n), idx))


def test_paired_t_matches_scipy_and_dm_h1_equals_it() -> None:
    a, b = _series(0, 0.003)
    t = paired_test(a, b, "t")
    ref = stats.ttest_rel(a, b)
    assert t["stat"] == pytest.approx(ref.statistic) and t["p_value"] == pytest.approx(ref.pvalue)
    dm = paired_test(a, b, "dm", horizon=1)
    # with h=1: mean / sqrt(var0 / n) * sqrt((n-1)/n) = mean / (std1 / sqrt(n)), the paired t exactly
    assert dm["stat"] == pytest.approx(ref.statistic) and dm["p_value"] == pytest.approx(ref.pvalue)
    assert abs(paired_test(a, b, "dm", horizon=5)["stat"]) != pytest.approx(abs(ref.statistic))


def test_dm_detects_a_real_gain_and_not_noise() -> None:
    a, b = _series(1, 0.01)
    assert paired_test(a, b, "dm", horizon=5)["p_value"] < 0.001
    # with no true difference the test rejects at 5% about 5% of the time (its size)
    p = np.array([paired_test(*_series(seed, 0.0), "dm", horizon=5)["p_value"] for seed in range(200)])
    assert 0.02 < (p < 0.05).mean() < 0.09
    a, b = _series(2, 0.0)
    # only common dates count
    assert paired_test(a.iloc[:100], b, "t")["n"] == 100
    with pytest.raises(ValueError, match="unknown method"):
        paired_test(a, b, "wilcoxon")
