"""The full development set (501 symbols, 2.24M rows): run with ``pytest -m slow``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_shared
from tests.features.conftest import adjust
from vfr.features import build_features, feature_names


@pytest.mark.slow
def test_full_set_builds_sane_features():
    """Every symbol of the development set (speed is measured in benchmarks/run.py)."""
    raw = pd.read_parquet(require_shared())
    prices = adjust(raw)
    del raw
    calls = []
    f = build_features(prices, progress=calls.append)
    assert len(calls) == prices["symbol"].nunique() == 501
    assert len(f) == len(prices)
    names = feature_names()
    values = f[names].to_numpy()
    assert values.dtype == np.float32 and not np.isinf(values).any()
    ranks = f[[f"{n}_rank" for n in names]].to_numpy()
    assert np.nanmin(ranks) > 0 and np.nanmax(ranks) == 1
