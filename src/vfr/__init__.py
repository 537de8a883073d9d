"""VFR: stock analysis and ML-enhanced stock selection.

Data flows one way::

    data (providers -> MarketStore) -> features -> ml (labels, splits, train, evaluate,
    registry) -> scoring (classic + ML blend) -> backtest / reports

Each subpackage exposes a small public interface in its ``__init__``.
"""

__version__ = "0.1.0"
