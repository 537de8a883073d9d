"""Start-up time of VFR: `import vfr`, `import vfr.features`, `vfr --help`, `vfr select --include-ml`.

One command:  python benchmarks/startup.py [--runs 5] [--src PATH] [--label TEXT] [--no-write] [--select-home PATH]

Each case runs in a fresh interpreter (``sys.executable``), ``--runs`` times after one untimed
warm-up run (so the file cache is warm, as for a user's second command); the median wall time
of the whole process (interpreter start included) is reported, next to a bare ``python -c pass``.
``vfr --help`` is timed as ``python -m vfr.cli --help`` (what the console script runs). Each case
also lists the heavy libraries the process loaded. ``--src`` times another source tree (for
example ``git archive HEAD src | tar -x -C /tmp/before``) by putting it first on PYTHONPATH.
Results are appended to docs/benchmarks.md with the machine they ran on. Targets on the 2-core
reference machine: 1.5 s for ``import vfr.features``, 1 s for ``import vfr``, ``vfr --help`` and
``vfr select --include-ml`` over every stock (issue 18).

``vfr select --include-ml`` is timed in a VFR home holding every S&P 500 member of the
development data (../shared/data) from 2017 to 2019 with every factor group and a champion
trained on them by a reduced walk-forward (built once into ``--select-home``, default
``benchmarks/.results/select-home``; skipped with the reason when the data is absent). Every
timed run is a fresh process; the champion's scores of the day come from the cache that
`vfr train` filled (:mod:`vfr.ml.scorecache`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import append_results, machine  # the machine description of every benchmark

#: Libraries that must not load at start-up (imported inside the functions that use them).
HEAVY = ("mlflow", "optuna", "shap", "dask", "distributed", "torch", "lightgbm", "xgboost", "catboost",
         "sklearn", "playwright", "scipy", "matplotlib", "sqlalchemy", "fastapi", "pandas")
#: Case -> python arguments.
CASES: dict[str, list[str]] = {
    "python -c pass (interpreter only)": ["-c", "pass"],
    "import vfr": ["-c", "import vfr"],
    "import vfr.cli": ["-c", "import vfr.cli"],
    "import vfr.metrics": ["-c", "import vfr.metrics"],
    "import vfr.features": ["-c", "import vfr.features"],
    "import vfr.ml": ["-c", "import vfr.ml"],
    "import vfr.ml.evaluate": ["-c", "import vfr.ml.evaluate"],
    "vfr --help": ["-m", "vfr.cli", "--help"],
    "vfr --version": ["-m", "vfr.cli", "--version"],
}
SELECT_CASE = "vfr select --include-ml (every stock, a fresh process)"
TARGETS = {"import vfr.features": 1.5, "import vfr": 1.0, "vfr --help": 1.0, SELECT_CASE: 1.0}
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFR_SHARED_DATA", REPO.parent / "shared" / "data"))


def build_select_home(home: Path) -> str | None:
    """A VFR home with every member's 2017-2019 prices, every factor group and a champion
    (reduced walk-forward); returns None when ready, else why it cannot be built."""
    prices = SHARED / "sp500" / "prices_daily.parquet"
    needed = [prices, SHARED / "sp500" / "constituents.csv", SHARED / "earnings" / "earnings_surprises.parquet",
              SHARED / "macro"]
    if not all(p.exists() for p in needed):
        return f"development data not found under {SHARED}"
    if (home / "vfr.duckdb").exists() and (home / "mlflow.db").exists():
        return None
    import pandas as pd

    from vfr.config import Settings
    from vfr.ml import ModelRegistry, TrainConfig
    from vfr.pipeline import stage_features, stage_ingest, stage_ingest_fundamentals, stage_train

    home.mkdir(parents=True, exist_ok=True)
    raw = pd.read_parquet(prices)
    part = home / "prices_2017_2019.parquet"
    raw[raw["date"] >= "2017-01-01"].to_parquet(part)
    settings = Settings(home=home)
    stage_ingest(settings, part, universe=[str(needed[1]), "index-constitution:sp500"])
    stage_ingest_fundamentals(settings, earnings=needed[2], macro=needed[3])
    stage_features(settings)
    outcome = stage_train(settings, TrainConfig.from_settings(settings, train_window=252, retrain_every=126,
                                                              max_rounds=100))
    registry = ModelRegistry.from_settings(settings)
    if registry.champion_version(settings.model_name) is None:  # the gate may refuse a reduced model
        registry.set_champion(settings.model_name, outcome.version)
        from vfr.selection import warm_champion_scores

        warm_champion_scores(settings)
    return None
_PROBE = ("import sys, runpy\nsys.argv = {argv!r}\n"
          "try:\n    {run}\nexcept SystemExit:\n    pass\n"
          "import json\nprint('\\n' + json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({heavy!r}))))")


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(src).resolve()), env.get("PYTHONPATH")) if p)
    return env


def time_case(args: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall seconds of ``python <args>`` in fresh processes (after one warm-up run).

    Raises
    ------
    RuntimeError
        If a run exits non-zero.
    """
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"python {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def heavy_loaded(args: list[str], env: dict[str, str]) -> list[str]:
    """Heavy libraries loaded by ``python <args>`` (run once more through a probe).

    ``-m vfr.cli ...`` is probed through the Typer app itself: the console entry point
    (:func:`vfr.cli.main`) ends with ``os._exit`` and would skip the probe's report.
    """
    if args[0] == "-c":
        argv, run = ["-c"], f"exec({args[1]!r})"
    elif args[:2] == ["-m", "vfr.cli"]:
        argv, run = ["vfr", *args[2:]], "from vfr.cli import app; app(sys.argv[1:], prog_name='vfr')"
    else:
        argv, run = [args[1], *args[2:]], f"runpy.run_module({args[1]!r}, run_name='__main__')"
    code = _PROBE.format(argv=argv, run=run, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else ["(probe failed)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case (median reported)")
    parser.add_argument("--src", help="source tree to time instead of the installed one (put first on PYTHONPATH)")
    parser.add_argument("--label", default="", help="what is measured, for the results' title")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--select-home", type=Path, default=REPO / "benchmarks" / ".results" / "select-home",
                        help="VFR home of the `vfr select --include-ml` case (built once when missing)")
    args = parser.parse_args()
    env = _env(args.src)
    cases = dict(CASES)
    why = build_select_home(args.select_home)
    if why is None:
        cases[SELECT_CASE] = ["-m", "vfr.cli", "select", "--include-ml"]
        env_select = env | {"VFR_HOME": str(args.select_home)}
    else:
        print(f"{SELECT_CASE}: skipped ({why})", flush=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for name, case in cases.items():
        target = f"<= {TARGETS[name]} s" if name in TARGETS else ""
        case_env = env_select if name == SELECT_CASE else env
        try:
            seconds = time_case(case, args.runs, case_env)
        except RuntimeError as exc:  # an older tree (--src) may lack the module or the option
            if not args.src and "ModuleNotFoundError: No module named 'vfr." not in str(exc):
                raise
            rows.append(f"| {name} | absent | {target} | |")
            print(rows[-1], flush=True)
            continue
        heavy = heavy_loaded(case, case_env) if name.startswith(("import", "vfr")) else []
        rows.append(f"| {name} | {seconds:.2f} | {target} | {', '.join(heavy) or 'none'} |")
        print(rows[-1], flush=True)
    stamp = time.strftime("%Y-%m-%d")
    title = f"Start-up time ({stamp}{', ' + args.label if args.label else ''})"
    text = "\n".join([
        f"\n## {title}\n",
        f"Machine: {machine()}. `python benchmarks/startup.py --runs {args.runs}`"
        + (f" on `{args.src}`" if args.src else "") + f": median of {args.runs} fresh processes after one "
        f"warm-up, wall time including the interpreter's own start; load average at the start {load}.\n",
        "| case | seconds | target | heavy libraries loaded |",
        "| --- | ---: | ---: | --- |",
        *rows, "",
    ])
    if args.no_write:
        print(text)
    else:
        print(f"appended to {append_results(text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
