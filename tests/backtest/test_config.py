"""BacktestConfig: validation with errors that name the field, settings, and the run's inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.backtest.test_engine_features import random_market
from vfr.backtest import BacktestConfig, CostModel, run_backtest
from vfr.config import Settings


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"top_n": 0}, ValueError, r"BacktestConfig\.top_n must be >= 1"),
    ({"top_n": 2.5}, TypeError, r"BacktestConfig\.top_n must be an integer"),
    ({"rebalance_every": 0}, ValueError, r"rebalance_every must be >= 1"),
    ({"execution_lag": -1}, ValueError, r"execution_lag must be >= 0"),
    ({"quantile": 1.5}, ValueError, r"quantile must be finite and in \(0, 1\]"),
    ({"quantile": 0.0}, ValueError, r"quantile"),
    ({"max_weight": 0}, ValueError, r"max_weight"),
    ({"min_trade": -0.01}, ValueError, r"min_trade"),
    ({"min_trade": float("nan")}, ValueError, r"min_trade"),
    ({"capital": 0}, ValueError, r"capital"),
    ({"gross_exposure": -1.0}, ValueError, r"gross_exposure"),
    ({"rebalance": "yearly"}, ValueError, r"rebalance must be one of"),
    ({"fill": "vwap"}, ValueError, r"fill must be one of"),
    ({"costs": 10.0}, TypeError, r"costs must be a vfr\.backtest\.CostModel"),
    ({"long_short": 1}, TypeError, r"long_short must be True or False"),
    ({"start": "not a date"}, ValueError, r"BacktestConfig\.start is not a date"),
    ({"start": "2021-02-01", "end": "2021-01-01"}, ValueError, r"start '2021-02-01' is after end"),
])
def test_bad_settings_name_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        BacktestConfig(**kwargs)


def test_values_are_normalised_and_frozen():
    cfg = BacktestConfig(top_n=np.int64(3), long_short=np.bool_(True), quantile=1, capital=5)
    assert (type(cfg.top_n), type(cfg.long_short), type(cfg.quantile), type(cfg.capital)) == (int, bool, float, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.top_n = 4  # type: ignore[misc]
    assert dataclasses.replace(cfg, top_n=4).top_n == 4
    with pytest.raises(ValueError, match="top_n"):
        dataclasses.replace(cfg, top_n=0)  # replace validates too


def test_from_settings_takes_top_n_and_both_costs(tmp_path):
    settings = Settings(home=tmp_path, top_n=7, commission_bps=2.0, slippage_bps=3.5)
    cfg = BacktestConfig.from_settings(settings)
    assert cfg.top_n == 7 and cfg.costs == CostModel(commission_bps=2.0, slippage_bps=3.5)
    assert cfg.cost_bps == settings.cost_bps == 5.5
    cfg = BacktestConfig.from_settings(settings, top_n=3, rebalance="weekly")
    assert (cfg.top_n, cfg.rebalance, cfg.cost_bps) == (3, "weekly", 5.5)
    with pytest.raises(TypeError, match=r"unknown fields \['cost_bp'\]"):
        BacktestConfig.from_settings(settings, cost_bp=4)


def test_from_settings_takes_the_volatility_target_and_an_override_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.setenv("VFR_TARGET_VOL", "0.15")
    settings = Settings(home=tmp_path)
    assert BacktestConfig.from_settings(settings).target_vol == 0.15
    assert BacktestConfig.from_settings(settings, target_vol=None).target_vol is None
    assert BacktestConfig.from_settings(Settings(home=tmp_path, target_vol=None)).target_vol is None
    monkeypatch.setenv("VFR_TARGET_VOL", "-1")
    with pytest.raises(ValueError, match="target_vol"):
        Settings(home=tmp_path)


def test_price_columns_follow_the_settings():
    assert BacktestConfig().price_columns() == ["symbol", "date", "close"]
    cfg = BacktestConfig(fill="open", dividends=True, costs=CostModel(impact_coef=1.0))
    assert cfg.price_columns() == ["symbol", "date", "close", "open", "volume", "close_raw", "dividend_amount"]
    assert "close_raw" in BacktestConfig(costs=CostModel(commission_per_share=0.01)).price_columns()


def test_sectors_and_sector_neutral_must_agree():
    prices, scores, sectors = random_market(n_sym=6, n_days=30)
    with pytest.raises(ValueError, match="sector_neutral is True but no sectors"):
        run_backtest(prices, scores, BacktestConfig(top_n=2, sector_neutral=True))
    with pytest.raises(ValueError, match="sectors were given but config.sector_neutral is False"):
        run_backtest(prices, scores, BacktestConfig(top_n=2), sectors=sectors)
    with pytest.raises(TypeError, match="config must be a vfr.backtest.BacktestConfig"):
        run_backtest(prices, scores, {"top_n": 2})  # type: ignore[arg-type]


def test_params_record_the_config():
    prices, scores, _ = random_market(n_sym=6, n_days=30)
    cfg = BacktestConfig(top_n=2, costs=CostModel(commission_bps=1.0, slippage_bps=2.0))
    res = run_backtest(prices, scores, cfg)
    assert res.params == cfg.as_params() | {"relative_to": "equal_weight"}
    assert res.params["cost_bps"] == 3.0 and res.params["costs"]["commission_bps"] == 1.0
