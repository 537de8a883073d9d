"""Sharpe ratio, PSR, deflated Sharpe ratio and PBO by CSCV (vfr.metrics.overfitting).

Values come from the papers' worked example, hand computations written out in the comments,
and Monte-Carlo checks with fixed seeds whose tolerances are derived in place.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from vfr.metrics.overfitting import (
    EULER_MASCHERONI,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    return_moments,
    sharpe_ratio,
)


def _phi(x: float) -> float:
    """Standard Normal CDF through math.erf (independent of the module's NormalDist)."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# ---------------------------------------------------------------------------------------------
# Sharpe ratio and moments
# ---------------------------------------------------------------------------------------------
def test_sharpe_ratio_hand_computed():
    # r = 1, 2, 3, 4: mean 2.5, sample sd sqrt(((1.5^2 + 0.5^2) * 2) / 3) = sqrt(5/3) = 1.290994
    r = [1.0, 2.0, 3.0, 4.0]
    assert sharpe_ratio(r) == pytest.approx(2.5 / math.sqrt(5 / 3), rel=1e-12)
    assert sharpe_ratio(pd.Series(r), periods_per_year=252) == pytest.approx(2.5 / math.sqrt(5 / 3) * math.sqrt(252))
    frame = pd.DataFrame({"a": r, "b": [-x for x in r]})
    out = sharpe_ratio(frame)
    assert list(out.index) == ["a", "b"]
    assert out["a"] == pytest.approx(1.9364917, rel=1e-7) and out["b"] == pytest.approx(-1.9364917, rel=1e-7)


def test_return_moments_hand_computed():
    # r = 0, 0, 0, 4: mean 1, deviations -1, -1, -1, 3; m2 = 12/4 = 3, m3 = (-3 + 27)/4 = 6,
    # m4 = (3 + 81)/4 = 21 -> skew 6 / 3^1.5 = 1.1547005, kurtosis 21 / 9 = 2.3333333 (raw)
    skew, kurt = return_moments([0.0, 0.0, 0.0, 4.0])
    assert skew == pytest.approx(6 / 3 ** 1.5, rel=1e-12)
    assert kurt == pytest.approx(21 / 9, rel=1e-12)
    assert kurt >= 1 + skew ** 2  # Pearson's inequality holds for these moment estimators
    # the same estimators as scipy's biased ones, on a skewed sample
    r = np.random.default_rng(4).lognormal(size=500)
    g3, g4 = return_moments(r)
    assert g3 == pytest.approx(scipy_stats.skew(r, bias=True), rel=1e-10)
    assert g4 == pytest.approx(scipy_stats.kurtosis(r, fisher=False, bias=True), rel=1e-10)


# ---------------------------------------------------------------------------------------------
# PSR
# ---------------------------------------------------------------------------------------------
def test_psr_hand_computed_normal():
    # SR = 0.1 per day, SR* = 0, T = 253, Normal (g3 = 0, g4 = 3):
    # z = 0.1 * sqrt(252) / sqrt(1 + 0.5 * 0.01) = 1.5874508 / 1.0024969 = 1.5834970; Phi(z) = 0.943346
    assert probabilistic_sharpe_ratio(0.1, 0.0, 253) == pytest.approx(0.943346, abs=1e-6)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 253, 0.0, 3.0) == pytest.approx(0.943346, abs=1e-6)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 253, excess_kurtosis=0.0) == pytest.approx(0.943346, abs=1e-6)
    # SR equal to the benchmark: z = 0, PSR = 1/2 whatever the moments
    assert probabilistic_sharpe_ratio(0.05, 0.05, 100, -1.0, 6.0) == 0.5


def test_psr_hand_computed_non_normal():
    # SR = 0.1, SR* = 0.02, T = 501, g3 = -1, g4 = 6 (raw) = excess 3:
    # 1 - (-1)(0.1) + (6 - 1)/4 * 0.01 = 1 + 0.1 + 0.0125 = 1.1125
    # z = 0.08 * sqrt(500) / sqrt(1.1125) = 1.7888544 / 1.0547512 = 1.6959966
    z = 0.08 * math.sqrt(500) / math.sqrt(1.1125)
    assert z == pytest.approx(1.6959966, rel=1e-7)
    expected = _phi(z)
    assert expected == pytest.approx(0.9550567, abs=1e-7)
    assert probabilistic_sharpe_ratio(0.1, 0.02, 501, -1.0, 6.0) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe_ratio(0.1, 0.02, 501, -1.0, excess_kurtosis=3.0) == pytest.approx(expected, rel=1e-12)
    # negative skew and fat tails lower the confidence against the Normal assumption
    assert expected < probabilistic_sharpe_ratio(0.1, 0.02, 501)


def test_psr_calibrated_on_skewed_returns_monte_carlo():
    """Under H0 (true SR = SR*) the PSR is ~uniform: P(PSR > 0.95) ~ 5 %, if the moments are used.

    Returns 1 - Exp(1) + 0.2 (skew -2, raw kurtosis 9, true per-period SR 0.2), T = 1000,
    R = 4000 paths, seed 7. The share of PSR(0.2) > 0.95 is a binomial proportion with standard
    error sqrt(0.05 * 0.95 / 4000) = 0.0034: the corrected PSR must be within 4 standard errors
    (0.014) of 0.05; the PSR that assumes Normal returns rejects too often (~0.10), more than
    0.05 + 0.014 (the test of the correction itself).
    """
    rng = np.random.default_rng(7)
    t_obs, paths, true_sr = 1000, 4000, 0.2
    x = 1.0 - rng.exponential(size=(paths, t_obs)) + true_sr
    corrected, normal = [], []
    for row in x:
        sr = sharpe_ratio(row)
        g3, g4 = return_moments(row)
        corrected.append(probabilistic_sharpe_ratio(sr, true_sr, t_obs, g3, g4))
        normal.append(probabilistic_sharpe_ratio(sr, true_sr, t_obs))
    corrected, normal = np.array(corrected), np.array(normal)
    se = math.sqrt(0.05 * 0.95 / paths)
    assert abs((corrected > 0.95).mean() - 0.05) < 4 * se
    assert abs((corrected < 0.05).mean() - 0.05) < 4 * se
    assert (normal > 0.95).mean() > 0.05 + 4 * se


# ---------------------------------------------------------------------------------------------
# Expected maximum Sharpe ratio and DSR
# ---------------------------------------------------------------------------------------------
def test_dsr_paper_numerical_example():
    """Bailey & López de Prado (2014), numerical example: SR0 = 0.1132 and DSR = 0.9004.

    T = 1250 daily observations, annualised SR 2.5 -> 2.5 / sqrt(250) = 0.1581139 per day;
    N = 100 trials whose annualised Sharpe ratios have variance 0.5 -> 0.5 / 250 = 0.002 per
    day; skewness -3, kurtosis 10 (raw).
    """
    sr_daily = 2.5 / math.sqrt(250)
    res = deflated_sharpe_ratio(sr=sr_daily, n_obs=1250, skew=-3.0, kurtosis=10.0, n_trials=100,
                                sr_variance=0.5 / 250)
    assert round(res.sr0, 4) == 0.1132
    assert round(res.dsr, 4) == 0.9004
    assert res.sr0 == pytest.approx(expected_max_sharpe(100, 0.5 / 250))
    assert res.sr == pytest.approx(0.1581139, rel=1e-6)
    # the same with the excess kurtosis 7
    alt = deflated_sharpe_ratio(sr=sr_daily, n_obs=1250, skew=-3.0, excess_kurtosis=7.0, n_trials=100,
                                sr_variance=0.5 / 250)
    assert alt.dsr == pytest.approx(res.dsr, rel=1e-12)
    # hand check of the statistic: (0.1581139 - 0.1131720) * sqrt(1249) / sqrt(1 + 3 * 0.1581139
    # + 9/4 * 0.025) = 0.0449419 * 35.341194 / 1.2371711 = 1.283816
    assert res.z == pytest.approx(1.283816, abs=2e-6)
    assert res.dsr == pytest.approx(_phi(res.z), rel=1e-12)


def test_expected_max_sharpe_hand_computed():
    # N = 100, V = 1: (1 - g) * Z^-1(0.99) + g * Z^-1(1 - 1/(100 e)) = 0.4227843 * 2.3263479
    # + 0.5772157 * 2.6801 ~ 2.5306
    g = EULER_MASCHERONI
    assert g == pytest.approx(0.5772156649, abs=1e-10)
    assert expected_max_sharpe(100, 1.0) == pytest.approx(2.5306, abs=1e-4)
    # scales with the standard deviation of the trials' Sharpe ratios
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * expected_max_sharpe(100, 1.0), rel=1e-12)
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_sharpe_matches_simulated_maxima(n_trials):
    """The approximation against the mean of 20,000 simulated maxima of N standard Normals (seed 1).

    The approximation is asymptotic in N: it is +2.3 % off the exact E[max] at N = 10, +0.9 % at
    100 and +0.45 % at 1000. The Monte-Carlo mean has a standard error below 0.6/sqrt(20000) =
    0.0042 (the sd of the maximum is < 0.6 for N >= 10), at most 0.3 % of E[max]; a 3.5 %
    tolerance covers both, and the overstatement exceeds 2.5 standard errors at every N.
    """
    rng = np.random.default_rng(1)
    simulated = rng.standard_normal((20_000, n_trials)).max(axis=1).mean()
    approx = expected_max_sharpe(n_trials, 1.0)
    assert approx == pytest.approx(simulated, rel=0.035)
    assert approx > simulated  # the approximation overstates E[max] for these N (conservative DSR)


def test_dsr_from_returns_equals_dsr_from_statistics():
    rng = np.random.default_rng(3)
    r = rng.standard_t(df=5, size=750) * 0.01 + 0.001
    from_returns = deflated_sharpe_ratio(r, n_trials=20, sr_variance=0.001)
    g3, g4 = return_moments(r)
    from_stats = deflated_sharpe_ratio(sr=sharpe_ratio(r), n_obs=750, skew=g3, kurtosis=g4, n_trials=20,
                                       sr_variance=0.001)
    assert from_returns == from_stats
    assert from_returns.n_obs == 750 and from_returns.n_trials == 20
    # one trial: no deflation, DSR = PSR against 0
    single = deflated_sharpe_ratio(r, n_trials=1, sr_variance=0.001)
    assert single.sr0 == 0.0
    assert single.dsr == pytest.approx(probabilistic_sharpe_ratio(sharpe_ratio(r), 0.0, 750, g3, g4))
    # more trials (or more dispersed trials) can only deflate further
    assert deflated_sharpe_ratio(r, n_trials=200, sr_variance=0.001).dsr < from_returns.dsr
    assert deflated_sharpe_ratio(r, n_trials=20, sr_variance=0.004).dsr < from_returns.dsr


# ---------------------------------------------------------------------------------------------
# PBO by CSCV
# ---------------------------------------------------------------------------------------------
def test_pbo_hand_computed_s4_n3_with_ties():
    """T = 4 rows, S = 4 one-row blocks, N = 3 trials, metric = mean; the 6 combinations by hand.

    rows (A, B, C): r0 = (3, 1, 2), r1 = (1, 2, 0), r2 = (0, 3, 1), r3 = (2, 0, 3)

    IS blocks  IS means (A, B, C)   n*   OOS means (A, B, C)   OOS rank of n*      w      lambda
    {0, 1}     (2, 1.5, 1)          A    (1, 1.5, 2)           1                   1/4    ln(1/3)
    {0, 2}     (1.5, 2, 1.5)        B    (1.5, 1, 1.5)         1                   1/4    ln(1/3)
    {0, 3}     (2.5, 0.5, 2.5)      A*   (0.5, 2.5, 0.5)       1.5 (tie with C)    3/8    ln(3/5)
    {1, 2}     (0.5, 2.5, 0.5)      B    (2.5, 0.5, 2.5)       1                   1/4    ln(1/3)
    {1, 3}     (1.5, 1, 1.5)        A*   (1.5, 2, 1.5)         1.5 (tie with C)    3/8    ln(3/5)
    {2, 3}     (1, 1.5, 2)          C    (2, 1.5, 1)           1                   1/4    ln(1/3)
    (* first of the tied in-sample best.) Every lambda < 0: PBO = 1. The pairs (IS, OOS) of n*
    are (2, 1), (2, 1), (2.5, 0.5), (2.5, 0.5), (1.5, 1.5), (2, 1): OOS = 3 - IS exactly, so the
    degradation slope is -1 and the intercept 3; no OOS loss.
    """
    m = pd.DataFrame({"A": [3, 1, 0, 2], "B": [1, 2, 3, 0], "C": [2, 0, 1, 3]}, dtype=float)
    res = pbo_cscv(m, n_splits=4, metric="mean")
    assert res.n_combinations == 6 and res.n_obs_used == 4
    np.testing.assert_array_equal(res.best_trial, [0, 1, 0, 1, 0, 2])
    np.testing.assert_allclose(res.relative_ranks, [1 / 4, 1 / 4, 3 / 8, 1 / 4, 3 / 8, 1 / 4])
    np.testing.assert_allclose(res.logits, np.log([1 / 3, 1 / 3, 3 / 5, 1 / 3, 3 / 5, 1 / 3]))
    np.testing.assert_allclose(res.is_performance, [2, 2, 2.5, 2.5, 1.5, 2])
    np.testing.assert_allclose(res.oos_performance, [1, 1, 0.5, 0.5, 1.5, 1])
    assert res.pbo == 1.0
    assert res.degradation_slope == pytest.approx(-1.0) and res.degradation_intercept == pytest.approx(3.0)
    assert res.prob_oos_loss == 0.0
    assert res.best_trial_counts().to_dict() == {"A": 3, "B": 2, "C": 1}


def test_pbo_hand_computed_s2_persistent_winners():
    """S = 2, N = 4, metric = mean: block means (A, B, C, D) = (4, 3, 2, 1) then (3, 4, 1, 2).

    IS = first half: n* = A, OOS rank of A's 3 among (3, 4, 1, 2) is 3 -> w = 3/5, lambda = ln 1.5.
    IS = second half: n* = B, OOS rank of B's 3 among (4, 3, 2, 1) is 3 -> w = 3/5, lambda = ln 1.5.
    Both logits > 0: PBO = 0. The odd first row is dropped (T = 5 is not a multiple of S = 2).
    """
    m = np.array([[99.0, -99, 99, -99],  # dropped
                  [4, 3, 2, 1], [4, 3, 2, 1],
                  [3, 4, 1, 2], [3, 4, 1, 2]])
    res = pbo_cscv(m, n_splits=2, metric="mean")
    assert res.n_obs_used == 4 and res.n_combinations == 2
    np.testing.assert_allclose(res.logits, [math.log(1.5)] * 2)
    assert res.pbo == 0.0
    assert math.isnan(res.degradation_slope)  # both IS values are 4: no regression


def test_pbo_sharpe_fast_path_equals_direct_computation():
    rng = np.random.default_rng(11)
    m = rng.normal(0.01, 1.0, size=(203, 7)) + 50.0  # large common level: tests the centring
    fast = pbo_cscv(m, n_splits=6)
    direct = pbo_cscv(m, n_splits=6, metric=lambda a: a.mean(axis=0) / a.std(axis=0, ddof=1))
    np.testing.assert_allclose(fast.is_performance, direct.is_performance, rtol=1e-9)
    np.testing.assert_allclose(fast.oos_performance, direct.oos_performance, rtol=1e-9)
    np.testing.assert_array_equal(fast.best_trial, direct.best_trial)
    np.testing.assert_allclose(fast.logits, direct.logits)
    assert fast.n_obs_used == 198


def test_pbo_near_zero_when_one_trial_dominates():
    """19 noise trials and one with a per-period Sharpe ratio of 0.2 (T = 1600, S = 16, seed 5).

    Each half has 800 rows: a noise trial's Sharpe ratio has sd 1/sqrt(800) = 0.035, so the
    expected max of 19 of them (~2 sd = 0.07) is ~4 sd below the true trial's 0.2: it is the
    in-sample best and the out-of-sample best in every combination, and PBO = 0.
    """
    rng = np.random.default_rng(5)
    m = pd.DataFrame(rng.standard_normal((1600, 20)), columns=[f"t{i}" for i in range(20)])
    m["t7"] += 0.2
    res = pbo_cscv(m)
    assert res.n_combinations == 12870
    assert res.pbo < 0.01
    assert (res.best_trial_counts().index[0], res.best_trial_counts().iloc[0]) == ("t7", 12870)
    assert res.prob_oos_loss == 0.0
    assert np.all(res.relative_ranks == 20 / 21)


def test_pbo_about_one_half_for_pure_noise_monte_carlo():
    """Exchangeable zero-skill trials: the OOS rank of the IS winner is uniform, E[PBO] = 1/2 exactly.

    Why exactly: in-sample and out-of-sample rows are disjoint, so with i.i.d. returns the IS
    winner n* is independent of the OOS metrics, whose ranks are exchangeable; with N = 20 (even)
    w <= 1/2 iff rank <= 10, probability 10/20. PBO of one matrix is very noisy (the 12,870
    combinations share their data), so the check averages 60 independent matrices (seeds 0-59,
    T = 800, S = 16) and allows 4 standard errors of that mean, estimated from the 60 values
    themselves (a deterministic test; a false failure would be a > 4-sigma event).
    """
    pbos = np.array([pbo_cscv(np.random.default_rng(seed).standard_normal((800, 20))).pbo
                     for seed in range(60)])
    se = pbos.std(ddof=1) / math.sqrt(pbos.size)
    assert 0.005 < se < 0.05  # sanity of the spread itself: neither degenerate nor all-or-nothing
    assert abs(pbos.mean() - 0.5) < 4 * se


def test_pbo_high_for_anti_persistent_trials():
    """Trials good in one half of the blocks and bad in the other are overfit by construction.

    S = 8 blocks of 100 rows; trial i (i = 0, 1, 2) earns +0.3 per period in the blocks whose
    index has bit i set and -0.3 in the others (noise sd 0.1), trials 3-5 are their mirrors.
    Every trial is good in exactly 4 of the 8 blocks, so the in-sample winner (the trial with
    most of its good blocks in the training half) has most of its bad blocks out of sample:
    the out-of-sample rank of the winner is low in most combinations (PBO 0.9 with seed 2) and
    the IS/OOS relation is a line of slope about -1 (the total over all 8 blocks is 0).
    """
    rng = np.random.default_rng(2)
    s, rows = 8, 100
    signs = np.array([[1.0 if (b >> i) & 1 else -1.0 for i in range(3)] for b in range(s)])  # (S, 3)
    m = rng.standard_normal((s * rows, 3)) * 0.1 + np.repeat(signs, rows, axis=0) * 0.3
    m = np.column_stack([m, -m])  # each trial and its mirror: N = 6
    res = pbo_cscv(m, n_splits=s)
    assert res.pbo > 0.75
    assert res.prob_oos_loss > 0.75
    assert res.degradation_slope == pytest.approx(-1.0, abs=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"performance_matrix": np.zeros(10)}, "performance_matrix must be 2-D"),
        ({"performance_matrix": np.ones((32, 1))}, "at least 2 trials"),
        ({"performance_matrix": np.full((32, 3), np.nan)}, "NaN"),
        ({"performance_matrix": np.ones((8, 3)), "n_splits": 16}, "fewer than n_splits"),
        ({"performance_matrix": np.ones((32, 3)), "n_splits": 5}, "n_splits must be even"),
        ({"performance_matrix": np.ones((32, 3)), "n_splits": 0}, "n_splits must be an integer >= 2"),
        ({"performance_matrix": np.ones((32, 3)), "metric": "sortino"}, "metric must be"),
        ({"performance_matrix": np.ones((32, 3))}, "zero variance"),
        ({"performance_matrix": np.eye(32)[:, :3], "n_splits": 4, "metric": lambda a: a.mean()},
         "metric must return 3 finite values"),
    ],
)
def test_pbo_input_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pbo_cscv(**kwargs)


# ---------------------------------------------------------------------------------------------
# input errors of the Sharpe functions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sharpe_ratio([1.0]), "at least 2"),
        (lambda: sharpe_ratio([1.0, np.nan, 2.0]), "NaN"),
        (lambda: sharpe_ratio([1.0, 1.0, 1.0]), "zero standard deviation"),
        (lambda: sharpe_ratio([1.0, 2.0], periods_per_year=0), "periods_per_year must be > 0"),
        (lambda: sharpe_ratio(np.ones((2, 2, 2))), "one-dimensional"),
        (lambda: sharpe_ratio(pd.DataFrame({"a": [1.0, 1.0]})), "zero standard deviation"),
        (lambda: return_moments([2.0, 2.0, 2.0]), "constant"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 1), "n_obs must be an integer >= 2"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100.5), "n_obs must be an integer"),
        (lambda: probabilistic_sharpe_ratio(float("nan"), 0.0, 100), "sr must be finite"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 3.0, excess_kurtosis=0.0), "not both"),
        # an excess kurtosis of 0 passed as raw with skew -1: below 1 + skew^2 = 2
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, -1.0, 0.0), "raw \\(non-excess\\) kurtosis"),
        # skew 2, kurtosis 5 = 1 + skew^2 (a two-point law) at SR = 2/skew = 1: 1 - 2 + 4/4 = 0
        (lambda: probabilistic_sharpe_ratio(1.0, 0.0, 100, 2.0, 5.0), "standard error vanishes"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials must be an integer >= 1"),
        (lambda: expected_max_sharpe(10, -0.1), "sr_variance must be >= 0"),
        (lambda: deflated_sharpe_ratio(n_trials=10, sr_variance=0.1), "either returns or sr"),
        (lambda: deflated_sharpe_ratio([0.1, 0.2, 0.0], sr=0.1, n_trials=10, sr_variance=0.1), "not both"),
        (lambda: deflated_sharpe_ratio(sr=0.1, n_trials=10, sr_variance=0.1), "n_obs is required"),
        (lambda: deflated_sharpe_ratio([0.1, 0.2, 0.0], n_obs=3, n_trials=10, sr_variance=0.1),
         "measured from returns"),
    ],
)
def test_sharpe_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
