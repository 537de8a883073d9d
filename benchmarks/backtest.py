"""Backtest speed on the full development set: 504 stocks, 20 years, daily marking, weekly rebalancing.

One command:  python benchmarks/backtest.py [--no-write]

Times :func:`vfr.backtest.run_backtest` (median of 3 runs, data already in memory) on the
adjusted closes of ../shared/data with a 20-day-momentum score, top-20 weekly, for three
configurations: proportional costs at the next close; the full cost model (per-share
commission + slippage + square-root impact) with dividends paid into cash; and a long-short
quintile book filled at the next open; and the default book, the cost-aware optimiser
(`weighting="optimized"`, one quadratic program per rebalance). Appends the results with the
machine to docs/benchmarks.md. Target: <= 5 s per backtest of the top-N engine (the optimiser's
run is reported, not held to it). Exits 0 with a message, writing nothing,
when the data is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFR_SHARED_DATA", REPO.parent / "shared" / "data"))
PRICES = SHARED / "sp500" / "prices_daily.parquet"
TARGET_S = 5.0
#: The default book since docs/research.md's eleventh pass: a quadratic program per rebalance (cvxpy +
#: Clarabel over every eligible stock), not held to the engine's 5 s target.
OPTIMIZED = "cost-aware optimiser weekly (the default book), every stock, at most 5%, 10 bp, next close"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print results without touching docs/benchmarks.md")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not PRICES.exists():
        print(f"benchmark skipped: development data not found at {PRICES}")
        return 0

    import pandas as pd

    from run import machine, publish  # the shared machine description and output of benchmarks/run.py
    from vfr.backtest import BacktestConfig, CostModel, run_backtest
    from vfr.data import adjust_prices

    raw = pd.read_parquet(PRICES)
    prices = adjust_prices(raw)
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    scores = prices[["date", "symbol"]].assign(score=mom.to_numpy())
    n_sym, years = prices["symbol"].nunique(), (prices["date"].max() - prices["date"].min()).days / 365.25
    configs = {
        "top-20 weekly, 10 bp, next close": {"costs": CostModel(slippage_bps=10.0)},
        "top-20 weekly, commission/share + slippage + sqrt impact, dividends to cash": {
            "costs": CostModel(commission_per_share=0.005, slippage_bps=5.0, impact_coef=1.0), "dividends": True},
        "long-short quintiles weekly, next open, 10 bp": {"quantile": 0.2, "long_short": True, "fill": "open",
                                                           "costs": CostModel(slippage_bps=10.0)},
        OPTIMIZED: {"weighting": "optimized", "max_weight": 0.05, "costs": CostModel(slippage_bps=10.0)},
    }
    rows = []
    for name, kw in configs.items():
        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            res = run_backtest(prices, scores, BacktestConfig(top_n=20, rebalance="weekly", **kw))
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        med = statistics.median(times)
        rows.append((name, med, statistics.median(cpu), len(res.daily), res.weights["date"].nunique()))
        print(f"{name}: {med:.2f} s wall, {statistics.median(cpu):.2f} s CPU")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## Backtest engine ({stamp})\n", f"Machine: {machine()}\n",
             (f"Data: {len(prices):,} price rows, {n_sym} stocks, {years:.1f} years; 20-day momentum score; "
              f"median of {args.repeat} runs of `run_backtest` (data in memory). Target <= {TARGET_S:g} s. "
              f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time is "
              "inflated when other jobs share the machine; CPU time is the process's own).\n"),
             "| configuration | wall s | CPU s | days | rebalances | wall within target |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {n} | {w:.2f} | {c:.2f} | {d} | {k} | "
              f"{'(no target)' if n == OPTIMIZED else 'yes' if w <= TARGET_S else 'NO'} |" for n, w, c, d, k in rows]
    publish(lines, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
