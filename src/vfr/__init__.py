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
    bt = vfr.backtest_scores(scores, prices, top_n=5)   # bt.metrics: a DataFrame
    ev = vfr.evaluate(scores, prices)               # Rank IC, ICIR, spread by horizon

The names are imported on first use (PEP 562 module ``__getattr__``): ``import vfr`` loads
nothing but this file. ``vfr.backtest`` stays the subpackage :mod:`vfr.backtest`.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not `from typing import ...`: `import vfr` imports nothing (issue 19)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

#: Facade names re-exported from :mod:`vfr.notebook` (imported on first access).
_NOTEBOOK = ("load_prices", "build_features", "score", "backtest_scores", "evaluate", "BacktestReport",
             "Evaluation")

__all__ = ["__version__", *_NOTEBOOK]


def __getattr__(name: str) -> Any:
    """Import a facade name from :mod:`vfr.notebook` on first use."""
    if name in _NOTEBOOK:
        value = getattr(importlib.import_module("vfr.notebook"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vfr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
