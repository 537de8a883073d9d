"""Side-by-side comparison of backtests (classic vs ML vs composite) over sub-periods."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from vfr.backtest.metrics import relative_metrics, summary_metrics

if TYPE_CHECKING:
    from vfr.backtest.engine import BacktestResult

__all__ = ["period_table"]


def period_table(results: dict[str, BacktestResult], periods: dict[str, tuple[str | None, str | None]] | None = None,
                 *, benchmarks: bool = True) -> pd.DataFrame:
    """Metrics of each strategy before and after costs, per sub-period.

    The sub-period metrics are computed on the days of each run's ``daily`` frame inside the
    period (from its first entry on), i.e. the same book continued, not a fresh start.

    Parameters
    ----------
    results : dict[str, BacktestResult]
        Strategy name -> result (all on the same calendar window).
    periods : dict[str, (str or None, str or None)], optional
        Label -> (first, last) day, inclusive; default one period ``"all"`` (whole run).
    benchmarks : bool, default True
        Add the benchmark rows (from the first result) per period.

    Returns
    -------
    pandas.DataFrame
        Index (``period``, ``strategy``, ``costs`` in {"gross", "net", "-"}); columns the
        keys of :func:`~vfr.backtest.metrics.summary_metrics` plus ``alpha``, ``beta``,
        ``information_ratio``, ``tracking_error`` vs the run's ``relative_to`` benchmark.
    """
    periods = periods or {"all": (None, None)}
    rows = {}
    for label, (a, b) in periods.items():
        first = None
        for name, res in results.items():
            d = res.daily.loc[res.first_entry:].loc[a:b]
            bench = res.benchmarks.loc[d.index]
            rel = res.params.get("relative_to", "equal_weight")
            for kind, col in (("gross", "gross_return"), ("net", "net_return")):
                m = summary_metrics(d[col], d["turnover"] if kind == "net" else None)
                m.update(relative_metrics(d[col], bench[rel]))
                rows[(label, name, kind)] = m
            first = first or (res, d.index)
        if benchmarks and first is not None:
            res, idx = first
            for col in res.benchmarks.columns:
                rows[(label, f"benchmark: {col}", "-")] = summary_metrics(res.benchmarks.loc[idx, col])
    out = pd.DataFrame(rows).T
    out.index.names = ["period", "strategy", "costs"]
    return out
