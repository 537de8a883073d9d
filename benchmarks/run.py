"""Benchmarks of the main job on the full development set (../shared/data), every factor group.

One command:  python benchmarks/run.py [--store-url URL] [--static-universe]

Runs the README's full pipeline as a user does, one `vfr` command per stage in its own
process (ingest with the point-in-time S&P 500 universe, earnings and macro, features, train,
select, backtest), timing each and reading each process's peak resident memory (``wait4``),
then times `select` with ML from the warm store and scores the walk-forward out-of-sample
predictions (Rank IC at the 5-day horizon, t over non-overlapping dates). Results are appended
to docs/benchmarks.md with the machine they ran on. Exits 0 with a message, writing nothing,
when the data is absent; exits 1 when a stage fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFR_SHARED_DATA", REPO.parent / "shared" / "data"))
PRICES = SHARED / "sp500" / "prices_daily.parquet"
UNIVERSE = SHARED / "sp500" / "constituents.csv"
EARNINGS = SHARED / "earnings" / "earnings_surprises.parquet"
MACRO = SHARED / "macro"
#: Targets: seconds (and, for train, peak GiB) per stage on the 2-core reference machine.
TARGETS = {"ingest": 30.0, "features": 120.0, "train (walk-forward)": 900.0}
MEMORY_TARGETS = {"train (walk-forward)": 4.0}


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
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


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


def publish(lines: list[str], write: bool, doc: str = "benchmarks.md") -> str:
    """Print a benchmark's result lines and, when ``write``, append them to ``docs/<doc>``."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        print(f"appended to {append_results(text, doc)}")
    return text


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float | str]:
    """Run one command in its own process; returns ``wall_s``, ``cpu_s`` (user + system of the
    process and the children it waited for, from ``wait4``), ``peak_gb`` (its peak RSS, GiB)
    and ``stdout``.

    Raises
    ------
    RuntimeError
        If the command exits non-zero (its last stderr lines are in the message).
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        secs = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {proc.returncode}: {tail}")
    return {"wall_s": secs, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_gb": usage.ru_maxrss / 2**20,
            "stdout": stdout}


def run_stage(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run one `vfr` command; returns (seconds, peak RSS GiB of that process, its stdout).

    Raises
    ------
    RuntimeError
        If the command exits non-zero (its last stderr lines are in the message).
    """
    m = run_measured(cmd, env)
    return float(m["wall_s"]), float(m["peak_gb"]), str(m["stdout"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--store-url", default=None, help="market store URL (default: DuckDB in a temp folder)")
    parser.add_argument("--static-universe", action="store_true",
                        help="the 2021 constituents list on every date instead of point-in-time membership")
    parser.add_argument("--no-write", action="store_true", help="print results without touching docs/benchmarks.md")
    args = parser.parse_args()
    if not all(p.exists() for p in (PRICES, UNIVERSE, EARNINGS, MACRO)):
        print(f"benchmark skipped: development data not found under {SHARED}")
        return 0

    from vfr.config import Settings
    from vfr.data import MarketStore
    from vfr.ml.evaluate import evaluate_predictions

    home = Path(tempfile.mkdtemp(prefix="vfr-bench-"))
    env = dict(os.environ, VFR_HOME=str(home), **({"VFR_STORE_URL": args.store_url} if args.store_url else {}))
    settings = Settings(home=home, store_url=args.store_url)
    vfr = [sys.executable, "-m", "vfr.cli"]
    universe = ["--universe", str(UNIVERSE)] + \
        ([] if args.static_universe else ["--universe", "index-constitution:sp500"])
    stages = {
        "ingest": [*vfr, "data", "ingest", str(PRICES), *universe],
        "ingest earnings + macro": [*vfr, "data", "ingest-fundamentals", "--earnings", str(EARNINGS),
                                    "--macro", str(MACRO)],
        "features": [*vfr, "features", "build"],
        "train (walk-forward)": [*vfr, "train"],
        "select with ML": [*vfr, "select", "--include-ml"],
        "backtest (3 strategies + report)": [*vfr, "backtest"],
    }
    times: dict[str, tuple[float, float]] = {}
    for name, cmd in stages.items():
        try:
            secs, peak, _ = run_stage(cmd, env)
        except RuntimeError as exc:
            print(f"benchmark failed at {name}: {exc}", file=sys.stderr)
            return 1
        times[name] = (secs, peak)
        print(f"{name}: {secs:.1f} s, peak {peak:.2f} GiB", file=sys.stderr, flush=True)
    warm = [run_stage(stages["select with ML"], env)[0] for _ in range(3)]
    times["select with ML, again (median of 3, process start included)"] = (statistics.median(warm), float("nan"))

    with MarketStore.from_settings(settings) as store:
        counts = store.table_counts()
        oos = store.read_table("predictions_oos")
    oos = oos[oos["fwd_dir_1w"].notna()]
    metrics = evaluate_predictions(oos, score="prob", label="fwd_dir_1w", fwd_return="fwd_excess_1w", horizon_days=5)

    universe_text = "2021 constituents on every date (static)" if args.static_universe else \
        "point-in-time S&P 500 membership (index-constitution)"
    lines = [
        f"\n## Main job, every factor group, one process per stage ({time.strftime('%Y-%m-%d')})\n",
        f"Machine: {machine()}. Store: `{settings.resolved_store_url.split('://')[0]}`. "
        f"`python benchmarks/run.py{' --static-universe' if args.static_universe else ''}`. Universe: {universe_text}. "
        f"Data: {counts.get('prices', 0):,} price rows, {counts.get('features', 0):,} feature rows, "
        f"{counts.get('earnings', 0):,} earnings reports, FRED-MD, VIX and GDP.\n",
        "| stage | seconds | target | peak memory, GiB | target |", "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (secs, peak) in times.items():
        target, mem = TARGETS.get(name), MEMORY_TARGETS.get(name)
        lines.append(f"| {name} | {secs:.1f} | {f'<= {target:g} s' if target else ''} | "
                     f"{'' if peak != peak else f'{peak:.2f}'} | {f'<= {mem:g}' if mem else ''} |")
    lines.append(f"\nWalk-forward out-of-sample predictions ({metrics['n_dates']} dates, horizon 1w): "
                 f"Rank IC {metrics['rank_ic_mean']:.4f} (t {metrics['rank_ic_t_stat_nonoverlap']:.2f} on "
                 f"non-overlapping 5-day dates), IC {metrics['ic_mean']:.4f}, ROC-AUC {metrics['roc_auc']:.4f}, "
                 f"top-minus-bottom decile {metrics['decile_spread']:.5f} per 5 days.\n")
    publish(lines, not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
