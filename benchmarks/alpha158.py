"""Time Qlib's Alpha158 factor set (vfr.features.alpha158) on the sp500 development set.

One command:  python benchmarks/alpha158.py [--all-groups] [--no-write]

For 1/4, 1/2 and all of the symbols (the first k in alphabetical order, all their days), a fresh
process reads and adjusts the prices, keeps the seven columns alpha158 reads (symbol, date,
OHLCV), then runs ``alpha158(prices)`` once; the script reports
that call's CPU seconds (user + system of the process, all threads) and wall seconds, the
process's peak RSS and the peak above the RSS it had before the call (the inputs), and appends
a table with the machine to docs/benchmarks.md. Targets for all symbols: <= 22 CPU-seconds and
<= 2 GB peak (Qlib's own expression engine took 110 CPU-seconds). Exits 0, writing nothing,
when the data is absent.

``--all-groups`` times the whole feature build instead: ``build_all_features(prices,
alpha158=True, ...)`` with the earnings, FRED-MD/VIX/GDP, sectors and point-in-time S&P 500
membership of ../shared (every VFR group, their ranks, the interactions and Alpha158, member
rows only), at the same three sizes: the issue-18 check that its cost grows at most linearly
in symbols x days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PRICES, SHARED, UNIVERSE, machine, publish

TARGET_CPU_S = 22.0
TARGET_PEAK_GB = 2.0
FRACTIONS = ((1, 4), (1, 2), (1, 1))


def _rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def child(num: int, den: int, all_groups: bool = False) -> None:
    """Measure one size in this process and print a JSON line."""
    from vfr.data import adjust_prices, read_prices_parquet
    from vfr.features.alpha158 import alpha158

    prices = adjust_prices(read_prices_parquet(PRICES))
    symbols = sorted(prices["symbol"].unique())
    keep = symbols[: len(symbols) * num // den]
    inputs = {}
    if all_groups:  # every input the full build reads, limited to the kept symbols
        from vfr.data import read_universe
        from vfr.data.fundamentals import read_earnings, read_macro
        from vfr.data.universe import sp500_membership

        earnings = read_earnings(SHARED / "earnings" / "earnings_surprises.parquet")
        universe = read_universe(UNIVERSE)
        inputs = {"earnings": earnings[earnings["symbol"].isin(keep)].reset_index(drop=True),
                  "macro": read_macro(SHARED / "macro"),
                  "universe": universe[universe["symbol"].isin(keep)].reset_index(drop=True),
                  "membership": sp500_membership(keep).intervals}
        prices = prices[prices["symbol"].isin(keep)].reset_index(drop=True).copy()
    else:  # only the columns alpha158 reads, as a fresh frame (the raw and adjusted frames freed)
        prices = prices.loc[prices["symbol"].isin(keep), ["symbol", "date", "open", "high", "low", "close",
                                                          "volume"]].reset_index(drop=True).copy()
    gc.collect()
    before = _rss_gb()
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if all_groups:
        from vfr.features import build_all_features

        out = build_all_features(prices, alpha158=True, **inputs)
    else:
        out = alpha158(prices)
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"symbols": len(keep), "rows": len(prices), "out_rows": len(out), "columns": out.shape[1] - 2,
                      "cpu_s": cpu, "wall_s": w1 - w0, "peak_gb": peak, "before_gb": before,
                      "span": f"{prices['date'].min().date()} to {prices['date'].max().date()}"}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--all-groups", action="store_true",
                        help="time build_all_features (every group, ranks, Alpha158) instead of alpha158")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, all_groups=args.all_groups)
        return 0
    if not PRICES.exists():
        print(f"development data not found at {PRICES}; nothing measured")
        return 0
    results = []
    for num, den in FRACTIONS:
        proc = subprocess.run([sys.executable, __file__, "--child", str(num), str(den),
                               *(["--all-groups"] if args.all_groups else [])],
                              check=True, capture_output=True, text=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(results[-1])
    full = results[-1]
    if args.all_groups:
        publish(all_groups_lines(results), not args.no_write)
        return 0
    lines = [
        "", f"## Alpha158 ({dt.date.today()})", "",
        (f"Machine: {machine()}. Command: `python benchmarks/alpha158.py`. Data: sp500 development set, "
         f"{full['span']}; `vfr.features.alpha158.alpha158(prices)` on the first 1/4, 1/2 and all symbols "
         f"(alphabetical), {full['columns']} float32 columns (no vwap in the data, so no VWAP0), one fresh "
         "process per size. CPU = user + system seconds of the call; peak = the process's peak RSS (the "
         "interpreter, libraries and prices frame included) and, in brackets, its rise during the call "
         "(the float32 output alone is rows x 157 x 4 bytes: 1.41 GB for all symbols)."), "",
        "| symbols | rows | CPU s | wall s | peak RSS GB (rise) | target |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        target = (f"<= {TARGET_CPU_S:.0f} CPU-s, <= {TARGET_PEAK_GB:.0f} GB (Qlib: 110 CPU-s)"
                  if r is full else "")
        lines.append(f"| {r['symbols']} | {r['rows']:,} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} | "
                     f"{r['peak_gb']:.2f} ({r['peak_gb'] - r['before_gb']:.2f}) | {target} |")
    publish(lines, not args.no_write)
    return 0


def all_groups_lines(results: list[dict]) -> list[str]:
    """The --all-groups table, with CPU seconds per million input rows (flat = linear growth)."""
    full = results[-1]
    lines = [
        "", f"## The whole feature build at three sizes ({dt.date.today()})", "",
        (f"Machine: {machine()}. Command: `python benchmarks/alpha158.py --all-groups`. Data: sp500 "
         f"development set, {full['span']}, the first 1/4, 1/2 and all symbols (alphabetical) with their "
         "earnings, sectors and point-in-time S&P 500 membership, and the whole FRED-MD/VIX/GDP; one fresh "
         f"process per size runs `build_all_features(prices, alpha158=True, ...)`: every VFR group, their "
         f"ranks, the interactions and Alpha158, member rows only ({full['columns']} columns). CPU = user + "
         "system seconds of the call; peak = the process's peak RSS and, in brackets, its rise during the "
         "call."), "",
        "| symbols | price rows | member rows | CPU s | CPU s per M price rows | wall s | peak RSS GB (rise) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r['symbols']} | {r['rows']:,} | {r['out_rows']:,} | {r['cpu_s']:.2f} | "
                     f"{r['cpu_s'] / r['rows'] * 1e6:.2f} | {r['wall_s']:.2f} | "
                     f"{r['peak_gb']:.2f} ({r['peak_gb'] - r['before_gb']:.2f}) |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
