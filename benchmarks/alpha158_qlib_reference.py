"""Write the Alpha158 reference fixture with Microsoft Qlib's own operators (issue 18).

Run in a throwaway virtual environment with ``pip install pyqlib pyarrow`` (pyqlib 0.9.7 was
used; it is *not* a VFR dependency)::

    python benchmarks/alpha158_qlib_reference.py [path/to/prices_daily.parquet]

It adjusts the raw prices of a few S&P 500 stocks as VFR's store does
(factor = adjusted_close / close: OHLC x factor, volume / factor), evaluates every field of
``qlib.contrib.data.loader.Alpha158DL.get_feature_config()`` with Qlib's expression engine
(``qlib.data.ops``, its Cython rolling kernels included) on those series, and writes

- the adjusted input rows are not stored (they are the shared data): :func:`reference_prices`
  rebuilds them from ``../shared`` for the test;
- ``tests/data/fixtures/alpha158/qlib_reference.csv``: Qlib's values on every 7th row from
  row 61 of each stock on (where every window is full), 9 significant digits.

Only Qlib's data *provider* is bypassed: ``Feature._load_internal`` returns the series of the
instrument (``$open`` .. ``$volume``) instead of reading Qlib's binary files, so the values are
float64 inputs through Qlib's operators. ``VWAP0`` is left out (no vwap in the data).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "fixtures" / "alpha158"
#: symbol -> (first, last date): ~335 trading days each; CMI splits 2-for-1 on 2008-01-03, ODFL
#: has 25 zero-volume (halted) days in its period
PERIODS = {"AAPL": ("2008-01-01", "2009-04-30"), "CMI": ("2007-06-01", "2008-09-30"),
           "JPM": ("2008-01-01", "2009-04-30"), "ODFL": ("2001-06-01", "2002-09-30")}
STEP, FIRST = 7, 61


def reference_prices(path: str | Path) -> pd.DataFrame:
    """The adjusted input rows of the reference (:data:`PERIODS` of the shared prices file): open,
    high, low, close times adjusted_close / close, volume divided by it (what Qlib's data holds)."""
    raw = pd.read_parquet(path, filters=[("symbol", "in", list(PERIODS))])
    keep_rows = np.zeros(len(raw), dtype=bool)
    for sym, (start, end) in PERIODS.items():
        keep_rows |= ((raw["symbol"] == sym) & (raw["date"] >= start) & (raw["date"] <= end)).to_numpy()
    raw = raw[keep_rows]
    raw = raw.sort_values(["symbol", "date"]).reset_index(drop=True)
    factor = raw["adjusted_close"] / raw["close"]
    prices = raw[["symbol", "date"]].copy()
    for c in ("open", "high", "low", "close"):
        prices[c] = raw[c] * factor
    prices["volume"] = raw["volume"] / factor
    prices["symbol"] = prices["symbol"].astype(str)
    prices["date"] = pd.to_datetime(prices["date"])
    return prices


def main(path: str) -> None:
    from qlib.config import C
    from qlib.contrib.data.loader import Alpha158DL
    from qlib.data import base
    from qlib.data.cache import H
    from qlib.data.ops import Operators, register_all_ops
    from qlib.utils import parse_field

    register_all_ops(C)
    prices = reference_prices(path)

    current: dict[str, pd.Series] = {}

    def load(self, instrument, start_index, end_index, *args):  # noqa: ANN001 - Qlib's signature
        return current[self._name].loc[start_index:end_index]

    base.Feature._load_internal = load
    fields, names = Alpha158DL.get_feature_config()
    keep = [i for i, name in enumerate(names) if name != "VWAP0"]
    exprs = [eval(parse_field(fields[i]), {"Operators": Operators, "Feature": base.Feature,
                                          "PFeature": base.PFeature}) for i in keep]
    out = []
    for sym, g in prices.groupby("symbol", sort=True):
        g = g.reset_index(drop=True)
        current.clear()
        current.update({c: g[c].astype(np.float64) for c in ("open", "high", "low", "close", "volume")})
        H["f"].clear()
        values = {names[i]: e.load(sym, 0, len(g) - 1, "day").to_numpy() for i, e in zip(keep, exprs, strict=True)}
        frame = pd.DataFrame(values)
        frame.insert(0, "date", g["date"].dt.strftime("%Y-%m-%d"))
        frame.insert(0, "symbol", sym)
        out.append(frame.iloc[FIRST::STEP])
    ref = pd.concat(out, ignore_index=True)
    OUT.mkdir(parents=True, exist_ok=True)
    ref.to_csv(OUT / "qlib_reference.csv", index=False, float_format="%.9g")
    print(f"{len(prices)} price rows, {len(ref)} reference rows x {ref.shape[1] - 2} features -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / "shared" / "data" / "sp500" / "prices_daily.parquet"))
