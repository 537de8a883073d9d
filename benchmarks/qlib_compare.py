"""VFR against Microsoft Qlib, like for like, in one run: Alpha158 on the same data and machine.

One command:  python benchmarks/qlib_compare.py [--setup] [--qlib-python PATH] [--repeats 3] [--no-write]

Qlib is an optional benchmark dependency, never a VFR one. ``--setup`` creates a virtual
environment for it (``benchmarks/.results/qlib/venv``, ``pip install pyqlib==0.9.7``: the
version the issue measured); ``--qlib-python`` uses another interpreter that has it. Where no
interpreter can ``import qlib`` the script says why and exits 0 without writing anything, as it
does when ../shared is absent.

1. **Data, once.** The sp500 development prices are adjusted as VFR's store adjusts them
   (factor = adjusted_close / close: OHLC times the factor, volume divided by it, the factor
   kept as a column, Qlib's convention), written one Parquet file per symbol and dumped into
   Qlib's binary format by Qlib's own tool (``benchmarks/vendor/qlib_dump_bin.py``, Qlib
   v0.9.7's ``scripts/dump_bin.py``, which the pip package does not ship). For VFR's whole
   feature build a store is ingested in a private ``VFR_HOME`` (prices with the point-in-time
   universe, earnings, macro). None of this is timed.
2. **Alternated runs**, ``--repeats`` times in the order Qlib, VFR Alpha158, VFR in memory, VFR build (each in
   a fresh process, CPU = user + system of the process and its waited children from ``wait4``,
   peak = its peak RSS):
   - *Qlib*: ``qlib.init(provider_uri=..., region="us", kernels=1)`` then
     ``D.features(D.instruments("all"), fields)`` with the 157 fields of
     ``Alpha158DL.get_feature_config()`` other than VWAP0 (no vwap in the data), 2000-2019.
     One kernel, so that every CPU second is counted (with joblib's worker pool the workers'
     time escapes ``wait4``); Qlib's expression and dataset caches are off.
   - *VFR Alpha158*: read the Parquet file, adjust, ``vfr.features.alpha158.alpha158(prices)``.
   - *VFR in memory*: read the store's inputs and ``build_all_features(..., alpha158=True)``:
     every VFR factor group, their cross-sectional ranks and Alpha158 as one frame (what Qlib's
     ``D.features`` returns: the like-for-like row).
   - *VFR build*: ``vfr features build --alpha158``: the same, written to the store.
3. Medians per side and the ratios VFR / Qlib are appended to docs/benchmarks.md with the
   machine. Targets (issue 18): VFR's Alpha158 + groups in <= 1/5 of Qlib's CPU time, <= 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import EARNINGS, MACRO, PRICES, REPO, UNIVERSE, machine, publish, run_measured

QLIB_VERSION = "0.9.7"
WORK = REPO / "benchmarks" / ".results" / "qlib"
VENV_PYTHON = WORK / "venv" / "bin" / "python"
DUMP_BIN = REPO / "benchmarks" / "vendor" / "qlib_dump_bin.py"
START, END = "2000-01-01", "2019-12-31"

QLIB_CHILD = """
import json, sys, time
import qlib
from qlib.constant import REG_US
qlib.init(provider_uri=sys.argv[1], region=REG_US, kernels=1, expression_cache=None, dataset_cache=None)
from qlib.contrib.data.loader import Alpha158DL
from qlib.data import D
fields, names = Alpha158DL.get_feature_config()
fields = [f for f, n in zip(fields, names) if n != "VWAP0"]
t0 = time.perf_counter()
df = D.features(D.instruments("all"), fields, start_time=sys.argv[2], end_time=sys.argv[3], freq="day")
print(json.dumps({"rows": len(df), "columns": df.shape[1], "call_wall_s": time.perf_counter() - t0}))
"""

VFR_CHILD = """
import json, sys, time
from vfr.data import adjust_prices, read_prices_parquet
from vfr.features.alpha158 import alpha158
t0 = time.perf_counter()
prices = adjust_prices(read_prices_parquet(sys.argv[1]))
prices = prices[(prices["date"] >= sys.argv[2]) & (prices["date"] <= sys.argv[3])]
out = alpha158(prices[["symbol", "date", "open", "high", "low", "close", "volume"]].reset_index(drop=True))
print(json.dumps({"rows": len(out), "columns": out.shape[1] - 2, "call_wall_s": time.perf_counter() - t0}))
"""

VFR_MEMORY_CHILD = """
import json, time
from vfr.config import Settings
from vfr.data.store import MarketStore
from vfr.features import build_all_features
from vfr.pipeline import stored_feature_inputs
t0 = time.perf_counter()
with MarketStore.from_settings(Settings()) as store:
    prices = store.read_prices()
    inputs = stored_feature_inputs(store)
out = build_all_features(prices, alpha158=True, **inputs)
print(json.dumps({"rows": len(out), "columns": out.shape[1] - 2, "call_wall_s": time.perf_counter() - t0}))
"""


def qlib_python(given: str | None, setup: bool) -> tuple[str | None, str]:
    """An interpreter that can import qlib, or None and the reason."""
    python = Path(given) if given else VENV_PYTHON
    if setup and not given and not python.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(WORK / "venv")], check=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", f"pyqlib=={QLIB_VERSION}", "pyarrow"],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            return None, f"pip install pyqlib=={QLIB_VERSION} failed: {pip.stderr.strip().splitlines()[-1:]}"
    if not python.exists():
        return None, f"no Python with Qlib at {python} (run with --setup, or --qlib-python PATH)"
    probe = subprocess.run([str(python), "-c", "import qlib; print(qlib.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"{python} cannot import qlib: {probe.stderr.strip().splitlines()[-1:]}"
    return str(python), probe.stdout.strip()


def qlib_data(python: str) -> Path:
    """Qlib's binary data of the development prices (built once, by Qlib's own dump tool)."""
    qdir = WORK / "qlib_data"
    if (qdir / "instruments" / "all.txt").exists():
        return qdir
    import pandas as pd

    raw = pd.read_parquet(PRICES)
    raw = raw[(raw["date"] >= START) & (raw["date"] <= END)]
    factor = raw["adjusted_close"] / raw["close"]
    frame = raw[["symbol", "date"]].copy()
    for c in ("open", "high", "low", "close"):
        frame[c] = raw[c] * factor
    frame["volume"] = raw["volume"] / factor
    frame["factor"] = factor
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    src = WORK / "source"
    src.mkdir(parents=True, exist_ok=True)
    for sym, g in frame.groupby("symbol", sort=True):
        g.to_parquet(src / f"{sym}.parquet", index=False)
    subprocess.run([python, str(DUMP_BIN), "dump_all", "--data_path", str(src), "--qlib_dir", str(qdir),
                    "--file_suffix", ".parquet", "--include_fields", "open,high,low,close,volume,factor",
                    "--max_workers", str(os.cpu_count() or 1)], check=True, capture_output=True)
    return qdir


def vfr_home() -> dict[str, str]:
    """Environment of a private VFR home with the development store ingested (built once)."""
    env = dict(os.environ, VFR_HOME=str(WORK / "vfr-home"))
    vfr = str(Path(sys.executable).with_name("vfr"))
    if not (WORK / "vfr-home" / ".ingested").exists():
        run_measured([vfr, "data", "ingest", str(PRICES), "--universe", str(UNIVERSE), "--universe",
                      "index-constitution:sp500"], env)
        run_measured([vfr, "data", "ingest-fundamentals", "--earnings", str(EARNINGS), "--macro", str(MACRO)], env)
        (WORK / "vfr-home" / ".ingested").touch()
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create the Qlib environment if missing")
    parser.add_argument("--qlib-python", help="an interpreter with pyqlib installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if not PRICES.exists():
        print(f"development data not found at {PRICES}; nothing measured")
        return 0
    python, version = qlib_python(args.qlib_python, args.setup)
    if python is None:
        print(f"Qlib side skipped: {version}; nothing measured")
        return 0
    qdir = qlib_data(python)
    env = vfr_home()
    vfr = str(Path(sys.executable).with_name("vfr"))
    runs: dict[str, list[dict]] = {"qlib": [], "vfr_alpha158": [], "vfr_memory": [], "vfr_build": []}
    for i in range(args.repeats):  # alternated: Qlib, VFR, VFR, Qlib, ...
        for side, cmd, side_env in (
            ("qlib", [python, "-c", QLIB_CHILD, str(qdir), START, END], None),
            ("vfr_alpha158", [sys.executable, "-c", VFR_CHILD, str(PRICES), START, END], None),
            ("vfr_memory", [sys.executable, "-c", VFR_MEMORY_CHILD], env),
            ("vfr_build", [vfr, "features", "build", "--alpha158"], env),
        ):
            m = run_measured(cmd, side_env)
            out = str(m["stdout"]).strip().splitlines()
            m |= json.loads(out[-1]) if out and out[-1].startswith("{") else {}
            runs[side].append(m)
            print(f"repeat {i + 1} {side}: {m['cpu_s']:.1f} CPU-s, {m['wall_s']:.1f} s, {m['peak_gb']:.2f} GiB",
                  flush=True)
    med = {side: {k: statistics.median(float(r[k]) for r in rs) for k in ("cpu_s", "wall_s", "peak_gb")}
           for side, rs in runs.items()}
    q = med["qlib"]
    cols = {side: runs[side][0].get("columns") for side in ("qlib", "vfr_alpha158", "vfr_memory")}
    label = {"qlib": f"Qlib {version}: `D.features` of Alpha158 ({cols['qlib']} fields), 1 kernel",
             "vfr_alpha158": f"VFR: read + adjust + `alpha158(prices)` ({cols['vfr_alpha158']} columns)",
             "vfr_memory": (f"VFR: read the store + `build_all_features(..., alpha158=True)` in memory "
                            f"({cols['vfr_memory']} columns: every group, ranks, Alpha158)"),
             "vfr_build": "VFR: `vfr features build --alpha158` (every group, ranks, Alpha158; written to the store)"}
    lines = ["", f"## VFR and Qlib side by side (`benchmarks/qlib_compare.py`, {dt.date.today()})", "",
             (f"Machine: {machine()}. Data: sp500 development set, {START} to {END} "
              f"({runs['qlib'][0].get('rows', 0):,} Qlib rows), Qlib's binary data written by its own dump tool. "
              f"Each side in a fresh process, alternated, {args.repeats} repeats; medians. CPU = user + system "
              "seconds of the process and its children (`wait4`), peak = its peak RSS."), "",
             "| work | CPU s | wall s | peak GiB | CPU / Qlib | peak / Qlib |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for side, m in med.items():
        lines.append(f"| {label[side]} | {m['cpu_s']:.1f} | {m['wall_s']:.1f} | {m['peak_gb']:.2f} | "
                     f"{m['cpu_s'] / q['cpu_s']:.2f} | {m['peak_gb'] / q['peak_gb']:.2f} |")
    lines += ["", "Every run: " + "; ".join(f"{side} " + ", ".join(f"{r['cpu_s']:.1f}" for r in rs) + " CPU-s"
                                             for side, rs in runs.items()) + "."]
    publish(lines, not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
