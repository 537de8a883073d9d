"""Training on real prices, registration in a real local MLflow store, and loading back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import needs_extra
from vfr.data import adjust_prices
from vfr.errors import StageError
from vfr.features import build_features
from vfr.ml import CHAMPION, ModelRegistry, RegistryError, TrainConfig, make_labels, train

SMALL = TrainConfig(horizon="1w", max_rounds=40, train_window=252, retrain_every=63, date_stride=3,
                    params={"min_data_in_leaf": 50}, num_threads=1)


@pytest.fixture(scope="module")
def real_inputs(sp500_raw_small: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = adjust_prices(sp500_raw_small)
    return build_features(prices), make_labels(prices)


@pytest.fixture(scope="module")
def trained(real_inputs):
    features, labels = real_inputs
    return train(features, labels, SMALL)


def test_walk_forward_predictions_are_out_of_sample(trained, real_inputs) -> None:
    features, _ = real_inputs
    oos = trained.oos_predictions
    dates = np.sort(features["date"].unique())
    first_pred = pd.Timestamp(dates[SMALL.train_window + SMALL.embargo])
    assert oos["date"].min() == first_pred  # every date after the first window, none before
    assert oos["date"].max() == pd.Timestamp(dates[-1])
    assert oos["prob"].between(0, 1).all()
    pos = {pd.Timestamp(d): i for i, d in enumerate(dates)}
    for k, w in enumerate(trained.windows):
        block = oos[oos["fold"] == k]
        assert block["date"].min() >= w.predict_start and block["date"].max() <= w.predict_end
        # the fold's training labels (t, t+h] end before its first prediction date
        assert pos[w.train_end] + SMALL.horizon_days < pos[w.predict_start]


def test_split_and_metrics_are_reported_against_baselines(trained) -> None:
    split = trained.split
    assert split.train[-1] < split.validation[0] and split.validation[-1] < split.test[0]
    for scope in (trained.split_metrics, trained.walk_forward_metrics):
        assert set(scope) == {"model", "always_up", "momentum_20d"}
        m = scope["model"]
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ic_mean", "rank_ic_mean",
                    "rank_icir", "rank_ic_t_stat", "decile_spread", "directional_accuracy"):
            assert np.isfinite(m[key]), key
        assert 0.3 < m["roc_auc"] < 0.7  # real stock-direction data: near chance, never perfect
        assert np.isnan(scope["always_up"]["roc_auc"])
    assert list(trained.feature_importance.index[:1])[0] in trained.feature_columns
    assert len(trained.data_fingerprint) == 64


def test_training_is_deterministic(real_inputs, trained) -> None:
    features, labels = real_inputs
    again = train(features, labels, SMALL)
    np.testing.assert_allclose(again.oos_predictions["prob"], trained.oos_predictions["prob"])
    assert again.data_fingerprint == trained.data_fingerprint


def test_register_load_and_champion(trained, settings, real_inputs) -> None:
    features, _ = real_inputs
    registry = ModelRegistry.from_settings(settings)
    assert registry.champion_version("m") is None
    meta = {"feature_columns": trained.feature_columns, "label": trained.label, "horizon": "1w",
            "training_window": [str(d.date()) for d in trained.training_window],
            "data_fingerprint": trained.data_fingerprint}
    v1 = registry.register("m", trained.model, params={"lr": 0.05}, metrics={"auc": 0.52, "bad": float("nan")},
                           metadata=meta)
    registry.set_champion("m", v1)
    loaded = registry.load("m")
    assert loaded.version == v1 == registry.champion_version("m")
    assert loaded.metadata["data_fingerprint"] == trained.data_fingerprint
    assert "lightgbm" in loaded.metadata["library_versions"]
    last = features[features["date"] == features["date"].max()]
    np.testing.assert_allclose(loaded.predict_proba(last), trained.model.predict_proba(last))
    contrib = loaded.contributions(last)  # tree SHAP of the served model (the API's explanations)
    assert contrib.shape == (len(last), len(trained.feature_columns)) and contrib.abs().to_numpy().sum() > 0
    with pytest.raises(RegistryError, match="needs features missing"):
        loaded.predict_proba(last.drop(columns=[trained.feature_columns[0]]))
    v2 = registry.register("m", trained.model, params={}, metrics={}, metadata=meta)
    assert int(v2) == int(v1) + 1 and registry.champion_version("m") == v1
    versions = registry.versions("m")
    assert [v["version"] for v in versions] == [v2, v1] and CHAMPION in versions[1]["aliases"]
    assert registry.run_metrics("m", v1)["auc"] == pytest.approx(0.52)


def test_registry_errors_are_clear(settings) -> None:
    registry = ModelRegistry.from_settings(settings)
    with pytest.raises(RegistryError, match="no model 'absent' with a 'champion' alias"):
        registry.load("absent")
    with pytest.raises(RegistryError, match="lacks"):
        registry.register("m", None, params={}, metrics={}, metadata={"label": "x"})
    meta = {"feature_columns": ["a"], "label": "fwd_dir_1w", "horizon": "1w", "training_window": ["a", "b"],
            "data_fingerprint": "x"}
    with pytest.raises(RegistryError, match="must be a vfr.ml.models.Model"):
        registry.register("m", object(), params={}, metrics={}, metadata=meta)
    assert registry.versions("m") == []  # the failed registration left nothing behind


def test_failed_training_raises_and_changes_nothing(real_inputs) -> None:
    features, labels = real_inputs
    short = features[features["date"] < features["date"].min() + pd.Timedelta(days=40)]
    with pytest.raises(StageError, match="too few"):
        train(short, labels, SMALL)
    with pytest.raises(StageError, match="not in the features frame"):
        train(features, labels, TrainConfig(feature_columns=("nope",)))


@pytest.mark.parametrize("algorithm", [pytest.param("xgboost", marks=needs_extra("xgboost")), "linear"])
def test_any_algorithm_trains_registers_and_serves_as_champion(algorithm, real_inputs, settings) -> None:
    """The champion is trained, registered, loaded and served through the model interface, whatever the algorithm."""
    features, labels = real_inputs
    config = TrainConfig(horizon="1w", algorithm=algorithm, max_rounds=20, train_window=252, retrain_every=126,
                         date_stride=3, num_threads=1)
    result = train(features, labels, config)
    assert result.model.algorithm == algorithm
    assert result.oos_predictions["prob"].between(0, 1).all() and result.oos_predictions["prob"].std() > 0
    assert np.isfinite(result.walk_forward_metrics["model"]["rank_ic_mean"])
    if algorithm == "xgboost":  # early stopping fixed the rounds of the refits
        assert result.model.params["n_estimators"] == result.best_iteration <= 20
    registry = ModelRegistry.from_settings(settings)
    meta = {"feature_columns": result.feature_columns, "label": result.label, "horizon": "1w",
            "training_window": [str(d.date()) for d in result.training_window],
            "data_fingerprint": result.data_fingerprint}
    version = registry.register("zoo", result.model, params={}, metrics={}, metadata=meta)
    registry.set_champion("zoo", version)
    loaded = registry.load("zoo")
    assert loaded.metadata["algorithm"] == algorithm
    assert registry.versions("zoo")[0]["algorithm"] == algorithm
    last = features[features["date"] == features["date"].max()]
    np.testing.assert_allclose(loaded.predict_proba(last), result.model.predict_proba(last), rtol=1e-6)


def test_an_ensemble_can_be_champion(real_inputs, settings) -> None:
    from vfr.ml import Ensemble

    features, labels = real_inputs
    members = [train(features, labels, TrainConfig(horizon="1w", algorithm=a, max_rounds=10, train_window=252,
                                                   retrain_every=252, date_stride=5, num_threads=1)).model
               for a in ("lightgbm", "linear")]
    ens = Ensemble(members, "voting", names=["gbm", "lin"])
    registry = ModelRegistry.from_settings(settings)
    meta = {"feature_columns": ens.feature_columns, "label": "fwd_dir_1w", "horizon": "1w",
            "training_window": ["2018-01-02", "2019-12-31"], "data_fingerprint": "f" * 64}
    registry.set_champion("ens", registry.register("ens", ens, params={}, metrics={}, metadata=meta))
    loaded = registry.load("ens")
    last = features[features["date"] == features["date"].max()]
    expected = (members[0].predict_proba(last) + members[1].predict_proba(last)) / 2
    np.testing.assert_allclose(loaded.predict_proba(last), expected, rtol=1e-6)
    assert loaded.metadata["algorithm"] == "ensemble"


def test_a_version_saved_as_a_raw_booster_still_loads(trained, real_inputs, tmp_path) -> None:
    """Versions registered before the model interface served the champion (MLflow's lightgbm flavour)."""
    import mlflow.lightgbm

    from vfr.ml.registry import _load_folder

    features, _ = real_inputs
    folder = tmp_path / "legacy"
    mlflow.lightgbm.save_model(trained.model.booster, str(folder))
    model = _load_folder(folder)
    last = features[features["date"] == features["date"].max()]
    assert model.feature_columns == trained.feature_columns
    np.testing.assert_allclose(model.predict_proba(last), trained.model.predict_proba(last))


def test_unknown_algorithm_is_a_clear_error() -> None:
    from vfr.ml import ModelError

    with pytest.raises(ModelError, match="unknown algorithm 'gbm'"):
        TrainConfig(algorithm="gbm")


def test_train_config_reads_any_spelling_of_the_horizon() -> None:
    assert TrainConfig(horizon="5d").horizon == TrainConfig(horizon=5).horizon == "1w"
    assert TrainConfig(horizon="21").horizon_days == 21
    with pytest.raises(Exception, match="horizon"):
        TrainConfig(horizon="3y")


def _future_made_learnable(labels: pd.DataFrame, features: pd.DataFrame, after: pd.Timestamp) -> pd.DataFrame:
    """``labels`` with every label after ``after`` replaced by a function of one feature (a
    signal a model learns with many boosting rounds, unlike the real, noisy labels)."""
    col = next(c for c in features.columns if c.endswith("_rank"))
    signal = labels[["date", "symbol"]].merge(features[["date", "symbol", col]], on=["date", "symbol"],
                                              how="left")[col].fillna(0.5).to_numpy() - 0.5
    out = labels.copy()
    late = (out["date"] > after).to_numpy()
    for name in out.columns:
        if name.startswith("fwd_dir_"):
            out.loc[late, name] = (signal[late] > 0).astype(float)
        elif name.startswith("fwd_"):
            out.loc[late, name] = signal[late] / 10
    return out


def test_no_walk_forward_window_sees_a_label_after_its_block(real_inputs) -> None:
    """Replacing every label after the first window's prediction block leaves that block's
    predictions unchanged: its model, rounds included, used nothing later. With the old recipe
    (every window's rounds from the split fit, early-stopped on the 70-85% slice of all dates)
    the same block changes: the look-ahead this guards against."""
    features, labels = real_inputs
    config = TrainConfig(horizon="1w", objective="regression", target="excess_rank", max_rounds=60,
                         early_stopping_rounds=5, train_window=0, retrain_every=126, date_stride=3,
                         params={"min_data_in_leaf": 50}, num_threads=1)
    base = train(features, labels, config)
    first = base.windows[0]
    changed = _future_made_learnable(labels, features, first.predict_end)

    def block(result) -> pd.Series:
        oos = result.oos_predictions
        return oos[oos["fold"] == 0].set_index(["date", "symbol"])["prob"].sort_index()

    again = train(features, changed, config)
    pd.testing.assert_series_equal(block(again), block(base))
    old = TrainConfig(**{**config.__dict__, "window_validation": 0.0})
    before, after = train(features, labels, old), train(features, changed, old)
    assert after.best_iteration != before.best_iteration  # the split fit's rounds follow the future labels
    assert not np.allclose(block(after).to_numpy(), block(before).to_numpy())


def test_windows_binned_together_see_no_later_feature_value(real_inputs) -> None:
    """Every walk-forward window here shares one binning (``bins_every`` covers them all), yet
    rescaling every feature value dated after the first window's prediction block leaves that
    block's predictions unchanged: the bin boundaries come from the first window's training rows
    only (``test_lightgbm_binned_fits_equal_plain_fits_and_take_bins_from_bins_from_only`` shows
    that boundaries found on all rows would move them)."""
    features, labels = real_inputs
    config = TrainConfig(horizon="1w", objective="regression", target="excess_rank", max_rounds=40,
                         early_stopping_rounds=5, train_window=0, retrain_every=126, date_stride=3,
                         params={"min_data_in_leaf": 50}, bins_every=1000, num_threads=1)
    base = train(features, labels, config)
    assert len(base.windows) >= 3
    later = (features["date"] > base.windows[0].predict_end).to_numpy()
    cols = [c for c in features.columns if c not in ("date", "symbol")]
    changed = features.copy()
    changed.loc[later, cols] = changed.loc[later, cols].to_numpy() * 7 + 3
    again = train(changed, labels, config)

    def block(result, k: int) -> np.ndarray:
        oos = result.oos_predictions
        return oos[oos["fold"] == k].sort_values(["date", "symbol"])["prob"].to_numpy()

    assert len(block(base, 0))
    np.testing.assert_array_equal(block(again, 0), block(base, 0))


def test_an_ensemble_over_seeds_averages_the_runs_of_its_seeds(real_inputs) -> None:
    """``seeds=2``: every walk-forward prediction is the mean of the one-seed runs with seeds 42
    and 43 (each member early-stops its own rounds, on the same binning), and the final model
    is a voting ensemble of their final refits."""
    from dataclasses import replace

    from vfr.ml.models import Ensemble, ModelError

    features, labels = real_inputs
    config = TrainConfig(horizon="1w", objective="regression", target="excess_rank", max_rounds=40,
                         early_stopping_rounds=5, train_window=0, retrain_every=126, date_stride=3,
                         params={"min_data_in_leaf": 50}, num_threads=1)
    pair = train(features, labels, replace(config, seeds=2))
    first, second = train(features, labels, config), train(features, labels, replace(config, seed=43))
    one, two = first.oos_predictions["prob"].to_numpy(), second.oos_predictions["prob"].to_numpy()
    np.testing.assert_allclose(pair.oos_predictions["prob"].to_numpy(), (one + two) / 2)
    assert isinstance(pair.model, Ensemble) and pair.model.names == ["seed42", "seed43"]
    X = features.drop(columns=["date", "symbol"]).iloc[-50:]
    np.testing.assert_allclose(pair.model.predict_proba(X),
                               (first.model.predict_proba(X) + second.model.predict_proba(X)) / 2)
    both = (first.model.contributions(X) + second.model.contributions(X)) / 2  # explains the mean raw score
    pd.testing.assert_frame_equal(pair.model.contributions(X), both[pair.model.feature_columns])
    assert not np.allclose(one, two)  # the seeds differ
    with pytest.raises(ModelError, match="seeds must be at least 1"):
        TrainConfig(seeds=0)


def test_shared_rounds_run_one_probe_per_window(real_inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    """``shared_rounds``: the members of a window take the first member's early-stopped rounds,
    so each window runs one probe fit instead of one per member; the first member is the
    one-model run's, and one model is unaffected by the option."""
    import importlib
    from dataclasses import replace

    train_module = importlib.import_module("vfr.ml.train")  # the module (vfr.ml.train is also the function)
    features, labels = real_inputs
    config = TrainConfig(horizon="1w", objective="regression", target="excess_rank", max_rounds=40,
                         early_stopping_rounds=5, train_window=0, retrain_every=126, date_stride=3,
                         params={"min_data_in_leaf": 50}, num_threads=1, seeds=2)
    probes: list[tuple[int, int | None]] = []
    real = train_module.window_rounds

    def counted(*args, **kwargs):  # the real probe, counted
        out = real(*args, **kwargs)
        probes.append((kwargs["member"], None if out is None else out.get("n_estimators")))
        return out

    monkeypatch.setattr(train_module, "window_rounds", counted)
    own = train(features, labels, config)
    own_probes, probes[:] = list(probes), []
    shared = train(features, labels, replace(config, shared_rounds=True))
    assert probes and {m for m, _ in probes} == {0}
    assert {m for m, _ in own_probes} == {0, 1} and len(own_probes) == 2 * len(probes)
    assert [r for m, r in own_probes if m == 0] == [r for _, r in probes]  # the same first member
    if [r for m, r in own_probes if m == 1] != [r for _, r in probes]:  # member 1 stopped elsewhere alone
        assert not np.allclose(shared.oos_predictions["prob"], own.oos_predictions["prob"])
    one = train(features, labels, replace(config, seeds=1))
    again = train(features, labels, replace(config, seeds=1, shared_rounds=True))
    np.testing.assert_array_equal(one.oos_predictions["prob"], again.oos_predictions["prob"])

