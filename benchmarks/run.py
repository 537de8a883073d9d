"""Benchmarks of the main job on the full development set (../shared/data).

One command:  python benchmarks/run.py [--store-url URL]

Runs every stage once in this process, timing each, then times `select` with ML from the
warm store, and records the process's peak resident memory. Results are appended to
docs/benchmarks.md with the machine they ran on. Exits 0 with a message, writing nothing,
when the data is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFR_SHARED_DATA", REPO.parent / "shared" / "data"))
PRICES = SHARED / "sp500" / "prices_daily.parquet"
UNIVERSE = SHARED / "sp500" / "constituents.csv"
TARGETS = {"ingest": 30.0, "features": 60.0, "train (walk-forward)": 600.0, "select with ML (warm)": 1.0}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def append_results(text: str, doc: str = "benchmarks.md") -> Path:
    """Append a benchmark's results to ``docs/<doc>`` (created with a title if missing); returns the path.

    Every script in benchmarks/ writes its results through here, newest last.
    """
    path = REPO / "docs" / doc
    if not path.exists():
        path.write_text("# Benchmarks\n\nWritten by the scripts in `benchmarks/`; newest last.\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return path


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--store-url", default=None, help="market store URL (default: DuckDB in a temp folder)")
    parser.add_argument("--no-write", action="store_true", help="print results without touching docs/benchmarks.md")
    args = parser.parse_args()
    if not PRICES.exists():
        print(f"benchmark skipped: development data not found at {PRICES}")
        return 0

    from rich.console import Console

    from vfr.config import Settings
    from vfr.pipeline import model_metrics_table, stage_backtest, stage_features, stage_ingest, stage_select, stage_train

    console = Console(stderr=True)
    home = Path(tempfile.mkdtemp(prefix="vfr-bench-"))
    settings = Settings(home=home, store_url=args.store_url)
    times: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        times[name] = time.perf_counter() - t0
        console.print(f"[bold]{name}[/]: {times[name]:.1f} s (peak RSS so far {peak_rss_gb():.2f} GiB)")
        return out

    report = timed("ingest", stage_ingest, settings, PRICES, UNIVERSE, console)
    rows = timed("features", stage_features, settings, console)
    outcome = timed("train (walk-forward)", stage_train, settings, None, console)
    stage_select(settings, include_ml=True)  # warm: model artifact and store pages cached
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        sel = stage_select(settings, include_ml=True)
        runs.append(time.perf_counter() - t0)
    times["select with ML (warm)"] = statistics.median(runs)
    bt = timed("backtest (3 strategies + report)", stage_backtest, settings, console=console,
               model_metrics=model_metrics_table(outcome.result))
    peak = peak_rss_gb()

    lines = [
        f"\n## Main job on the full development set ({time.strftime('%Y-%m-%d')})\n",
        f"Machine: {machine()}. Store: `{settings.resolved_store_url.split('://')[0]}`. "
        f"Data: {report.rows:,} price rows, {report.symbols} symbols, {report.start.date()} to {report.end.date()}; "
        f"{rows:,} feature rows; {len(outcome.result.windows)} walk-forward fits.\n",
        "| stage | seconds | target |", "| --- | ---: | ---: |",
    ]
    for name, secs in times.items():
        target = TARGETS.get(name)
        lines.append(f"| {name} | {secs:.2f} | {'<= %g s' % target if target else ''} |")
    lines.append(f"| peak memory, whole run | {peak:.2f} GiB | <= 6 GB |")
    lines.append("\nWalk-forward out-of-sample metrics (horizon 1w, direction of excess return):\n")
    table = model_metrics_table(outcome.result)
    keep = ["roc_auc", "accuracy", "log_loss", "ic_mean", "rank_ic_mean", "rank_icir", "rank_ic_t_stat_nonoverlap",
            "decile_spread", "directional_accuracy"]
    lines.append("| predictor | " + " | ".join(keep) + " |")
    lines.append("| --- |" + " ---: |" * len(keep))
    for idx, row in table[keep].iterrows():
        lines.append(f"| {idx} | " + " | ".join(f"{row[k]:.4f}" for k in keep) + " |")
    lines.append("\nBacktest, weekly top-20, 10 bps per unit traded, entry at the next close:\n")
    comp = bt.comparison[["cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown", "calmar_ratio"]]
    lines.append("| strategy | " + " | ".join(comp.columns) + " |")
    lines.append("| --- |" + " ---: |" * len(comp.columns))
    for idx, row in comp.iterrows():
        lines.append(f"| {idx} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    lines.append(f"\nModel v{outcome.version}, champion: {outcome.champion} ({outcome.reason}). "
                 f"Selection on {sel.date.date()}: ML {sel.ml_status}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"appended to {append_results(text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
