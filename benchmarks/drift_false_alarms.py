"""False-alarm rate of the feature-drift alert per month on the development features (issue 17).

One command:  python benchmarks/drift_false_alarms.py /tmp/research_home/vfr.duckdb

For every calendar month of 2002-2019 the month's feature rows (the "current" window, as the
daily check's 30 days) are compared with a reference sample drawn, as
:func:`vfr.monitoring.reference_sample` does (20,000 rows, seed 0), from the ``--reference-months``
(36) months before it (a model trained on the trailing three years). The feature-KS rule of
:class:`vfr.monitoring.DriftThresholds` is evaluated twice: all tested features count (the old
default, ``ks_rank_only=False``) and only the ``*_rank`` features count (the new default).
Tested features: every numeric column of the ``features`` table except the calendar-cycle ones
the daily check skips (:data:`vfr.retraining.jobs.CALENDAR_CYCLE_FEATURES`). Prints the share
of months that would raise the alert in 2002-2014 and 2015-2019, and the features most often
breached. The store is opened read-only.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter

import duckdb
import numpy as np
import pandas as pd

from vfr.monitoring import DriftThresholds, ks_drift, monitored_features
from vfr.retraining.jobs import CALENDAR_CYCLE_FEATURES

PERIODS = {"2002-2014": ("2002-01", "2014-12"), "2015-2019": ("2015-01", "2019-12")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="DuckDB store with a 'features' table (opened read-only)")
    parser.add_argument("--reference-months", type=int, default=36)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    con = duckdb.connect(args.store, read_only=True)
    names = [r[0] for r in con.execute("DESCRIBE features").fetchall()]
    cols = [c for c in names if c not in ("symbol", "date") and c.removesuffix("_rank") not in CALENDAR_CYCLE_FEATURES]
    frame = con.execute(f"SELECT date, {', '.join(cols)} FROM features WHERE date >= '1998-12-01'").df()
    con.close()
    months = (frame["date"].dt.year * 12 + frame["date"].dt.month - 1).to_numpy()  # integer month codes
    t = DriftThresholds()
    rank_mask = monitored_features(cols, rank_only=True)
    results = []
    for period, (lo, hi) in PERIODS.items():
        for m in pd.period_range(lo, hi, freq="M"):
            code = m.year * 12 + m.month - 1
            ref_rows = np.flatnonzero((months >= code - args.reference_months) & (months < code))
            cur_rows = np.flatnonzero(months == code)
            if len(cur_rows) == 0 or len(ref_rows) == 0:
                continue
            if len(ref_rows) > args.reference_rows:
                ref_rows = np.sort(np.random.default_rng(0).choice(ref_rows, args.reference_rows, replace=False))
            kd = ks_drift(frame.iloc[ref_rows], frame.iloc[cur_rows], cols, t.ks).set_index("feature").loc[cols]
            breached = kd["breached"].to_numpy(bool)
            results.append({"period": period, "month": str(m), "n_all": int(breached.sum()),
                            "n_rank": int((breached & rank_mask).sum()),
                            "all_feats": list(kd.index[breached]),
                            "rank_feats": list(kd.index[breached & rank_mask])})
    res = pd.DataFrame(results)
    res["alert_all"] = res["n_all"] >= t.ks_min_features
    res["alert_rank"] = res["n_rank"] >= t.ks_min_features
    print(f"{len(cols)} tested features ({int(rank_mask.sum())} *_rank); KS > {t.ks:g} on >= {t.ks_min_features}; "
          f"reference = {args.reference_rows} rows of the {args.reference_months} months before each month")
    print("| period | months | alert months, all features count (old) | alert months, `*_rank` only (new) "
          "| median breached features old / new |")
    print("| --- | --- | --- | --- | --- |")
    for period, g in res.groupby("period", sort=False):
        print(f"| {period} | {len(g)} | {g['alert_all'].sum()} ({g['alert_all'].mean():.0%}) "
              f"| {g['alert_rank'].sum()} ({g['alert_rank'].mean():.0%}) "
              f"| {g['n_all'].median():.0f} / {g['n_rank'].median():.0f} |")
    for key in ("all_feats", "rank_feats"):
        top = Counter(f for fs in res[key] for f in fs).most_common(8)
        print(f"most often breached ({key}, months of {len(res)}): " + ", ".join(f"{f} {n}" for f, n in top))
    print("alert months (new):", ", ".join(res.loc[res["alert_rank"], "month"]) or "none")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
