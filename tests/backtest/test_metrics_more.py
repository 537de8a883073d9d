"""New metrics checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import (
    alpha_beta,
    average_loss,
    average_win,
    information_ratio,
    max_drawdown_duration,
    profit_factor,
    relative_metrics,
    summary_metrics,
)


def test_drawdown_duration_by_hand():
    # equity 1.1, 0.99, 1.089, 1.2, 1.08, 1.08 -> under water on periods 2-3 (2) and 5-6 (2)
    r = pd.Series([0.10, -0.10, 0.10, 1.2 / 1.089 - 1, -0.10, 0.0])
    assert max_drawdown_duration(r) == 2.0
    assert max_drawdown_duration(pd.Series([-0.01, -0.01, 0.0, 0.5, -0.01])) == 3.0  # from E_0 = 1
    assert max_drawdown_duration(pd.Series([0.01, 0.02])) == 0.0
    assert math.isnan(max_drawdown_duration(pd.Series([], dtype=float)))


def test_win_loss_profit_factor_by_hand():
    r = pd.Series([0.02, -0.01, 0.04, -0.03, 0.0, np.nan])
    assert average_win(r) == pytest.approx(0.03)
    assert average_loss(r) == pytest.approx(-0.02)
    assert profit_factor(r) == pytest.approx(0.06 / 0.04)
    assert math.isnan(profit_factor(pd.Series([0.01, 0.02])))
    assert math.isnan(average_loss(pd.Series([0.01])))


def test_information_ratio_alpha_beta_by_hand():
    b = pd.Series([0.01, -0.02, 0.03, 0.0, 0.01])
    r = 0.001 + 1.5 * b  # exact line: beta 1.5, daily alpha 0.001
    alpha, beta = alpha_beta(r, b, periods_per_year=252)
    assert beta == pytest.approx(1.5)
    assert alpha == pytest.approx(1.001 ** 252 - 1)
    a = (r - b).to_numpy()
    ir = a.mean() / a.std(ddof=1) * math.sqrt(252)
    assert information_ratio(r, b) == pytest.approx(ir)
    # hand numbers: active = 0.001 + 0.5 b = [.006, -.009, .016, .001, .006]
    np.testing.assert_allclose(a, [0.006, -0.009, 0.016, 0.001, 0.006])
    assert a.mean() == pytest.approx(0.004)
    rel = relative_metrics(r, b)
    assert rel["tracking_error"] == pytest.approx(a.std(ddof=1) * math.sqrt(252))
    # alignment on the index: NaNs and non-overlapping dates are dropped
    r2 = pd.concat([r, pd.Series([0.5], index=[99])])
    assert information_ratio(r2, b) == pytest.approx(ir)
    assert math.isnan(alpha_beta(r, pd.Series([0.01] * 5))[1])


def test_summary_metrics_has_new_keys():
    out = summary_metrics(pd.Series([0.01, -0.02, 0.03, 0.0]))
    for k in ("max_drawdown_duration", "average_win", "average_loss", "profit_factor"):
        assert k in out
    assert out["profit_factor"] == pytest.approx(0.04 / 0.02)


def test_one_cost_flag_never_drops_another() -> None:
    """`vfr backtest --slippage-bps 5` once charged 5 bp instead of the 10 bp of the defaults."""
    from vfr.backtest import CostModel
    from vfr.config import Settings

    s = Settings()
    only_slippage = CostModel.with_defaults(default_commission_bps=s.commission_bps,
                                            default_slippage_bps=s.slippage_bps, slippage_bps=5.0)
    assert only_slippage.commission_bps == s.commission_bps == 5.0
    assert only_slippage.bps == 10.0 and only_slippage.describe() == "10 bps per unit traded"
    free = CostModel.with_defaults(default_commission_bps=5.0, default_slippage_bps=5.0, commission_bps=0.0,
                                   slippage_bps=0.0, commission_per_share=0.005, impact_coef=1.0)
    assert free.bps == 0.0
    assert free.describe() == "0 bps per unit traded + 0.005 USD per share + square-root impact Y=1"
    with pytest.raises(ValueError, match="slippage_bps must be >= 0"):
        CostModel.with_defaults(default_commission_bps=5.0, default_slippage_bps=5.0, slippage_bps=-1.0)
