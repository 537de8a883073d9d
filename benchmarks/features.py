"""Time every feature group on the full development set (504-stock universe, 20 years).

One command:  python benchmarks/features.py [--no-write]

Reads the prices, earnings, FRED-MD/VIX/GDP and constituents of ``../shared/data``, times
``build_features`` (technical), each of ``fundamental_features``, ``macro_features``,
``alternative_features`` separately, then the whole ``build_all_features`` (all groups, ranks
and interactions; the figure the target of <= 2 min applies to), and appends a table with the
machine to docs/benchmarks.md. Exits 0, writing nothing, when the data is absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PRICES, SHARED, UNIVERSE, machine, peak_rss_gb, publish

TARGET_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    earnings_path = SHARED / "earnings" / "earnings_surprises.parquet"
    macro_dir = SHARED / "macro"
    if not (PRICES.exists() and earnings_path.exists() and (macro_dir / "fred_md.parquet").exists()):
        print(f"development data not found under {SHARED}; nothing measured")
        return 0
    from vfr.data import adjust_prices, read_prices_parquet, read_universe
    from vfr.data.fundamentals import read_earnings, read_macro
    from vfr.features import (
        alternative_features,
        build_all_features,
        build_features,
        fundamental_features,
        macro_features,
    )

    t0 = time.perf_counter()
    prices = adjust_prices(read_prices_parquet(PRICES))
    earnings = read_earnings(earnings_path)
    macro = read_macro(macro_dir)
    universe = read_universe(UNIVERSE)
    rows: list[tuple[str, float]] = [("read + adjust inputs", time.perf_counter() - t0)]
    for label, fn in [
        ("technical (build_features)", lambda: build_features(prices)),
        ("fundamental_features", lambda: fundamental_features(prices, earnings)),
        ("macro_features", lambda: macro_features(prices, macro)),
        ("alternative_features", lambda: alternative_features(prices, earnings, universe)),
    ]:
        t = time.perf_counter()
        fn()
        rows.append((label, time.perf_counter() - t))
    t = time.perf_counter()
    out = build_all_features(prices, earnings=earnings, macro=macro, universe=universe)
    total = time.perf_counter() - t
    rows.append(("build_all_features (all groups + ranks + interactions)", total))
    n_sym = prices["symbol"].nunique()
    span = f"{prices['date'].min().date()} to {prices['date'].max().date()}"
    lines = [
        "", f"## All feature groups on the full development set ({dt.date.today()})", "",
        (f"Machine: {machine()}. Command: `python benchmarks/features.py`. Data: "
        f"{len(prices):,} price rows, {n_sym} symbols, {span}; output {out.shape[0]:,} rows x "
        f"{out.shape[1]} columns (groups: {', '.join(out.attrs['groups_present'])})."), "",
        "| step | seconds | target |", "| --- | ---: | ---: |",
    ]
    for label, sec in rows:
        target = f"<= {TARGET_S:.0f} s" if label.startswith("build_all") else ""
        lines.append(f"| {label} | {sec:.2f} | {target} |")
    lines.append(f"| peak memory, whole run | {peak_rss_gb():.2f} GiB | |")
    publish(lines, not args.no_write)
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
