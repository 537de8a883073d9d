"""Dataset lineage of the real development panel: fingerprints identify the data, feature
versions follow their definitions, records round-trip through JSON and are written atomically."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SP500_PRICES
from vfr.data import adjust_prices
from vfr.features.catalogue import ALL_FEATURES
from vfr.ml import TrainConfig, make_labels, train
from vfr.ml.lineage import (
    DatasetLineage,
    build_lineage,
    definition_hash,
    describe_source,
    feature_definitions,
    feature_versions,
    git_commit,
    read_lineage,
    write_lineage,
)

LABEL = "fwd_dir_1w"
WHEN = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def sources(sp500_raw_small: pd.DataFrame) -> list[dict]:
    return [describe_source("sp500/prices_daily", sp500_raw_small, path=SP500_PRICES),
            {"table": "constituents", "rows": 20, "url": "https://example.org/constituents.csv"}]


def lineage_of(frame: pd.DataFrame, cols: list[str], sources: list[dict], **kw) -> DatasetLineage:
    return build_lineage(frame, feature_columns=cols, label=LABEL, horizon="1w", sources=sources,
                         created_at=WHEN, **kw)


def test_record_describes_the_real_panel(real_panel, small_feature_columns, sources, sp500_raw_small) -> None:
    lin = lineage_of(real_panel, small_feature_columns, sources)
    assert lin.date_range == ("2010-01-04", "2019-12-31")
    assert lin.n_rows == len(real_panel) and lin.n_symbols == 20
    assert lin.n_labelled_rows == real_panel[LABEL].notna().sum() < lin.n_rows
    assert lin.feature_columns == tuple(small_feature_columns)
    assert lin.label == {"name": LABEL, "horizon": "1w", "horizon_days": 5, "definition": lin.label["definition"]}
    assert "excess return > 0" in lin.label["definition"]
    src = lin.sources[0]
    assert src["rows"] == len(sp500_raw_small) and src["path"] == str(SP500_PRICES)
    assert src["min_date"] == sp500_raw_small["date"].min().date().isoformat()
    assert src["max_date"] == sp500_raw_small["date"].max().date().isoformat()
    assert lin.sources[1]["name"] == "constituents" and lin.sources[1]["path"].startswith("https://")
    assert lin.created_at == "2024-05-06T12:30:00+00:00"
    assert lin.code["vfr_version"] == importlib.metadata.version("vfr")
    assert set(lin.libraries) == {"pandas", "numpy", "lightgbm", "scikit-learn"}
    assert lin.libraries["pandas"] == pd.__version__ and lin.libraries["numpy"] == np.__version__


def test_git_commit_is_the_checkout_head_or_none(tmp_path) -> None:
    import vfr

    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    assert head.returncode != 0 and git_commit(tmp_path) is None  # not a checkout: None, no error
    commit = git_commit()
    mine = subprocess.run(["git", "-C", vfr.__path__[0], "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    if commit is not None:
        assert commit == mine.stdout.strip() and len(commit) == 40


def test_fingerprint_identifies_the_labelled_data(real_panel, small_feature_columns, sources) -> None:
    cols = small_feature_columns
    a = lineage_of(real_panel, cols, sources)
    b = lineage_of(real_panel.copy(), cols, sources)
    assert a.fingerprint == b.fingerprint
    shuffled = real_panel.sample(frac=1.0, random_state=0)  # row order does not matter
    assert lineage_of(shuffled, cols, sources).fingerprint == a.fingerprint
    changed = real_panel.copy()
    i = changed.index[changed[LABEL].notna()][777]
    old = changed.loc[i, "rsi_14"]  # float32: the smallest change is one unit in the last place
    changed.loc[i, "rsi_14"] = np.nextafter(old, np.float32(np.inf), dtype=np.float32)
    assert changed.loc[i, "rsi_14"] != old
    assert lineage_of(changed, cols, sources).fingerprint != a.fingerprint
    flipped = real_panel.copy()
    flipped.loc[i, LABEL] = 1.0 - flipped.loc[i, LABEL]
    assert lineage_of(flipped, cols, sources).fingerprint != a.fingerprint
    assert lineage_of(real_panel, cols[:-1], sources).fingerprint != a.fingerprint


def test_fingerprint_matches_the_trained_model(real_panel, sp500_raw_small, sources) -> None:
    cols = ["ret_5d", "ret_20d", "rsi_14"]
    labels = make_labels(adjust_prices(sp500_raw_small))
    config = TrainConfig(horizon="1w", feature_columns=tuple(cols), max_rounds=5, early_stopping_rounds=2,
                         train_window=1000, retrain_every=1000, date_stride=5,
                         params={"min_data_in_leaf": 50}, num_threads=1)
    result = train(real_panel[["symbol", "date", *cols]], labels, config)
    assert lineage_of(real_panel, cols, sources).fingerprint == result.data_fingerprint


def test_feature_version_follows_its_definition(small_feature_columns) -> None:
    defs = feature_definitions()
    assert {f.name for f in ALL_FEATURES} <= set(defs)
    base = feature_versions([*small_feature_columns, "made_up"])
    assert base["made_up"] is None
    assert all(len(v) == 16 for k, v in base.items() if k != "made_up")
    assert base["rsi_14"] != base["rsi_14_rank"]  # a rank is a different column definition
    assert base == feature_versions([*small_feature_columns, "made_up"])  # deterministic
    changed = dict(defs)
    changed["rsi_14"] = dataclasses.replace(defs["rsi_14"], window=21)
    new = feature_versions(small_feature_columns, changed)
    assert new["rsi_14"] != base["rsi_14"] and new["rsi_14_rank"] != base["rsi_14_rank"]
    assert {k for k in new if new[k] != base[k]} == {"rsi_14", "rsi_14_rank"}
    reworded = dataclasses.replace(defs["ret_5d"], source=defs["ret_5d"].source + " (revised)")
    assert definition_hash(reworded) != definition_hash(defs["ret_5d"])


def test_json_round_trip(real_panel, small_feature_columns, sources, tmp_path) -> None:
    lin = lineage_of(real_panel, small_feature_columns, sources)
    text = lin.to_json()
    assert json.loads(text)["fingerprint"] == lin.fingerprint
    assert DatasetLineage.from_json(text) == lin
    assert DatasetLineage.from_dict(json.loads(text)) == lin
    path = write_lineage(lin, tmp_path / "runs" / "lineage.json")
    assert read_lineage(path) == lin and path.read_text().endswith("\n")
    with pytest.raises(ValueError, match=r"missing fields \['fingerprint'\]"):
        DatasetLineage.from_dict({k: v for k, v in lin.to_dict().items() if k != "fingerprint"})


def test_write_is_atomic(real_panel, small_feature_columns, sources, tmp_path) -> None:
    good = lineage_of(real_panel, small_feature_columns, sources)
    path = write_lineage(good, tmp_path / "lineage.json")
    before = path.read_bytes()
    # A value JSON cannot store, deep in the record: the streamed write fails midway.
    bad = dataclasses.replace(good, sources=(*good.sources, {"name": "x", "opened_by": object()}))
    with pytest.raises(TypeError):
        write_lineage(bad, path)
    assert path.read_bytes() == before  # old record intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lineage.json"]  # no temp file left
    with pytest.raises(TypeError):
        write_lineage(bad, tmp_path / "new.json")
    assert not (tmp_path / "new.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lineage.json"]


def test_bad_inputs_name_what_is_wrong(real_panel, sources) -> None:
    with pytest.raises(ValueError, match=r"columns missing from the dataset: \['nope'\]"):
        build_lineage(real_panel, feature_columns=["nope"], label=LABEL, horizon="1w", sources=sources)
    with pytest.raises(ValueError, match="unknown horizon '2w'"):
        build_lineage(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon="2w", sources=sources)
    with pytest.raises(ValueError, match="source 0 has no 'name'"):
        build_lineage(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon="1w", sources=[{"rows": 3}])
    with pytest.raises(TypeError, match="source 'x'"):
        build_lineage(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon="1w",
                      sources=[{"name": "x", "handle": object()}])
    lin = build_lineage(real_panel, feature_columns=["ret_5d"], label=LABEL, horizon=5, sources=[],
                        created_at=datetime(2024, 1, 1))  # naive = UTC; horizon in days
    assert lin.label["horizon"] == "1w" and lin.created_at == "2024-01-01T00:00:00+00:00"
