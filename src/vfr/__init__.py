"""VFR: stock analysis and ML-enhanced stock selection.

Data flows one way::

    data (providers -> MarketStore) -> features -> ml (labels, splits, train, evaluate,
    registry) -> scoring (classic + ML blend) -> backtest / reports

Each subpackage exposes a small public interface in its ``__init__``. For notebooks the
package itself re-exports the facade of :mod:`vfr.notebook` (issue 19)::

    import vfr
    prices = vfr.load_prices("prices_daily.parquet", symbols=[...], start="2015", end="2019")
    features = vfr.build_features(prices)
    scores = vfr.score(features)
    bt = vfr.backtest(scores, prices, top_n=5)      # bt.metrics: a DataFrame
    ev = vfr.evaluate(scores, prices)               # Rank IC, ICIR, spread by horizon

The names are imported on first use (PEP 562 module ``__getattr__``): ``import vfr`` loads
nothing but this file. ``vfr.backtest`` is also the subpackage :mod:`vfr.backtest`; calling
it (``vfr.backtest(scores, prices, ...)``) runs :func:`vfr.notebook.backtest`, and its
attributes (``vfr.backtest.run_backtest``, ...) are the subpackage's as always.
"""

from __future__ import annotations

import importlib
import sys
import types

TYPE_CHECKING = False  # not `from typing import ...`: `import vfr` imports nothing (issue 19)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

#: Facade names re-exported from :mod:`vfr.notebook` (imported on first access).
_NOTEBOOK = ("load_prices", "build_features", "score", "evaluate", "BacktestReport", "Evaluation")

__all__ = ["__version__", "backtest", *_NOTEBOOK]


class _CallableBacktest(types.ModuleType):
    """The class given to the :mod:`vfr.backtest` module: calling it is :func:`vfr.notebook.backtest`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("vfr.notebook").backtest(*args, **kwargs)


def _callable(module: types.ModuleType) -> types.ModuleType:
    if type(module) is types.ModuleType:
        module.__class__ = _CallableBacktest
    return module


def __getattr__(name: str) -> Any:
    """Import a facade name from :mod:`vfr.notebook` (or the callable :mod:`vfr.backtest`) on first use."""
    if name == "backtest":
        return _callable(importlib.import_module("vfr.backtest"))
    if name in _NOTEBOOK:
        value = getattr(importlib.import_module("vfr.notebook"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vfr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Module class of :mod:`vfr`: when the import system binds the subpackage ``vfr.backtest``
    to this package, the module is made callable first (see the module docstring)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "backtest" and isinstance(value, types.ModuleType):
            value = _callable(value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
