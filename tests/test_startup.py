"""Start-up stays light: importing features / metrics / ml and `vfr --help` load no heavy library.

Behaviour checks (which modules a fresh interpreter has loaded), not timings; the times are in
``benchmarks/startup.py`` and docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Imported only inside the functions that use them (see docs/decisions.md, "Ground floor").
HEAVY = ("mlflow", "optuna", "shap", "dask", "distributed", "torch", "lightgbm", "xgboost", "catboost",
         "sklearn", "playwright", "quantstats", "alphalens")

#: Prints, as JSON, the heavy top-level packages (and vfr subpackages) loaded after running CODE.
_PROBE = """
import json, sys
{code}
top = {{name.split(".")[0] for name in sys.modules}}
vfr = sorted({{".".join(name.split(".")[:2]) for name in sys.modules if name.startswith("vfr.")}})
print("\\n" + json.dumps({{"heavy": sorted(top & set({heavy!r})), "vfr": vfr}}))
"""

#: What the `vfr` console script runs (vfr.cli:main, which ends with os._exit, so the app is called directly).
_HELP = """
import io, contextlib
from vfr.cli import app
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        app(["--help"], prog_name="vfr")
    except SystemExit as exc:
        code = exc.code
assert code in (0, None), code
assert "Usage" in buf.getvalue(), buf.getvalue()[:500]
"""


def _loaded(code: str) -> dict[str, list[str]]:
    """Run ``code`` in a fresh interpreter; return the heavy packages and vfr subpackages it loaded."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(code=code, heavy=HEAVY)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["vfr.features", "vfr.metrics", "vfr.ml", "vfr.ml.evaluate", "vfr.ml.labels",
                                    "vfr.ml.registry", "vfr.pipeline"])
def test_importing_loads_no_heavy_library(module: str) -> None:
    assert _loaded(f"import {module}")["heavy"] == []


def test_the_pipeline_stages_load_scipy_stats_only_where_used() -> None:
    """`vfr select` and the other stages start without scipy.stats (drift monitoring's, ~1 s):
    only registering a trained model (its drift reference sample) imports it."""
    assert _loaded("import sys, vfr.pipeline\nassert 'scipy.stats' not in sys.modules")["heavy"] == []


def test_vfr_help_loads_no_heavy_library() -> None:
    loaded = _loaded(_HELP)
    assert loaded["heavy"] == []
    assert "vfr.ml" not in loaded["vfr"] and "vfr.pipeline" not in loaded["vfr"]


def test_metrics_is_on_the_ground_floor() -> None:
    """vfr.metrics needs only numpy, pandas and vfr.errors: no other vfr layer (vfr.config imports it)."""
    assert set(_loaded("import vfr.metrics")["vfr"]) == {"vfr.errors", "vfr.metrics"}


def test_lazy_ml_names_resolve_to_their_definitions() -> None:
    import importlib

    import vfr.ml

    assert set(vfr.ml.__all__) == set(vfr.ml._LAZY)
    for name, module in vfr.ml._LAZY.items():
        assert getattr(vfr.ml, name) is getattr(importlib.import_module(module), name), name
    # ``train`` is both a function and a submodule: once the submodule is imported (in a fresh
    # interpreter, before anything touched the name) the package still gives the function
    _loaded("import vfr.ml.train, vfr.ml\nassert callable(vfr.ml.train) and vfr.ml.train.__name__ == 'train'")
    assert callable(vfr.ml.train) and vfr.ml.train.__name__ == "train"
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        vfr.ml.not_a_name  # noqa: B018


def test_import_vfr_loads_only_itself_and_the_facade_resolves_lazily() -> None:
    """`import vfr` loads no vfr subpackage and no pandas (issue 19); the notebook names resolve on
    first use, and ``vfr.backtest`` is the plain subpackage."""
    loaded = _loaded("import vfr")
    assert loaded["vfr"] == [] and loaded["heavy"] == []
    _loaded("import sys, vfr\nassert 'pandas' not in sys.modules")
    code = """
import sys, types, vfr
import vfr.backtest
from vfr import notebook
assert vfr.load_prices is notebook.load_prices and vfr.score is notebook.score and vfr.evaluate is notebook.evaluate
assert vfr.backtest_scores is notebook.backtest_scores
assert type(vfr.backtest) is types.ModuleType and vfr.backtest.run_backtest.__module__ == "vfr.backtest.engine"
assert "quantstats" not in sys.modules and "alphalens" not in sys.modules
"""
    assert _loaded(code)["heavy"] == []
