"""Qlib's Alpha158 factor set computed by VFR's own engine (opt-in feature group ``alpha158``).

The formulas are those of ``Alpha158DL.get_feature_config()`` in Microsoft Qlib
(``qlib/contrib/data/loader.py``, MIT licence) with the operator semantics of
``qlib/data/ops.py`` and ``qlib/data/_libs/rolling.pyx``:

- 9 k-bar features (``KMID`` .. ``KSFT2``), the price ratios ``OPEN0, HIGH0, LOW0`` (and
  ``VWAP0`` only when the prices frame has a ``vwap`` column: the development set has none,
  so the set has 157 columns there), then 29 rolling operators over the windows
  5, 10, 20, 30 and 60 (``ROC5`` .. ``VSUMD60``), in Qlib's column order;
- prices are divided by ``close``, volumes by ``volume + 1e-12``, exactly as Qlib does;
- ``Std`` is the sample standard deviation (ddof=1); ``Slope``/``Rsquare``/``Resi`` are the
  least-squares line of the window's values on 1..N (``Resi`` = last value minus the line at
  N); ``Quantile`` interpolates linearly; ``Rank`` is the percentile rank (ties averaged) of
  the last value inside its window; ``IdxMax``/``IdxMin`` are the 1-based position of the
  first maximum/minimum counted from the window's oldest row; ``Corr`` is Pearson's
  correlation; ``Rsquare`` and ``Corr`` are NaN where a window's standard deviation is
  ``isclose(0, atol=2e-5)`` (Qlib's rule).

Differences from Qlib, on purpose:

- warm-up: Qlib's rolling operators use ``min_periods=1`` (a 60-day mean of 3 rows); here a
  value needs its whole window (NaN before), as every other VFR feature. From the first full
  window on the values are Qlib's (``tests/test_alpha158.py`` checks them against Qlib's own
  operators on real stocks);
- a window is the symbol's last N *valid* rows (VFR's rule, :mod:`vfr.features.technical`),
  not the last N exchange days with NaN for the missing ones;
- infinite results are NaN (float32 output). As in Qlib, ``CORD`` skips the pairs of its
  window where ``volume / Ref(volume, 1)`` is not finite (after a zero-volume day).

Engine (docs/decisions.md, "Alpha158 engine"): for a chunk of symbols at a time, one
symbols x rows float64 matrix per input, each symbol's valid rows packed from column 0 (its
history contiguous in memory); rolling sums, means, stds, extrema, arg-extrema and ranks with
Bottleneck's ``move_*`` functions (O(n) C loops, one matrix row per symbol, so no value crosses
from one symbol to the next), the regression slope as an exact weighted window sum
(``scipy.ndimage.correlate1d``), quantiles from sorted ``sliding_window_view`` blocks. Every
window is trailing: the value at row ``t`` uses rows ``<= t`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import bottleneck as bn
import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import correlate1d

from vfr.data.store import is_sorted_by
from vfr.features.cross_section import symbol_starts
from vfr.features.technical import check_columns

#: Rolling windows of Alpha158, trading days (rows of the symbol's history).
WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)
#: The k-bar features, in Qlib's order.
KBAR: tuple[str, ...] = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
#: The rolling operators, in Qlib's order (each over every window of :data:`WINDOWS`).
ROLLING: tuple[str, ...] = ("ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD",
                            "RANK", "RSV", "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD",
                            "SUMP", "SUMN", "SUMD", "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD")
_TINY = 1e-12  # Qlib's guard against division by zero
_STD_ATOL = 2e-5  # Qlib: Rsquare / Corr are NaN where the window's std is isclose(0, atol=2e-5)
_CHUNK_CELLS = 1 << 18  # symbols x rows cells per chunk of symbols (2 MiB per float64 matrix)
_QUANTILE_BLOCK = 1 << 21  # window cells sorted at a time by the quantile kernel (16 MiB of float64)


def alpha158_names(*, vwap: bool = False) -> list[str]:
    """Column names of :func:`alpha158`, in Qlib's order.

    Parameters
    ----------
    vwap : bool
        Include ``VWAP0`` (only built when the prices frame has a ``vwap`` column).

    Returns
    -------
    list of str
        158 names with ``vwap``, 157 without.
    """
    price = ["OPEN0", "HIGH0", "LOW0"] + (["VWAP0"] if vwap else [])
    return [*KBAR, *price, *(f"{op}{w}" for op in ROLLING for w in WINDOWS)]


#: The 157 columns built from OHLCV (no ``vwap`` column), in Qlib's order.
ALPHA158_NAMES: tuple[str, ...] = tuple(alpha158_names())


# --- kernels on (symbols, rows) float64 matrices, along the last axis --------------------

def _ref(x: np.ndarray, d: int) -> np.ndarray:
    """``Ref(x, d)``: the value ``d`` rows earlier (NaN for the first ``d`` rows)."""
    out = np.full_like(x, np.nan)
    out[:, d:] = x[:, :-d]
    return out


def _wsum(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_j weights[j] * x[t - w + 1 + j]`` over the trailing window (exact, O(n w) in C).

    The first ``w - 1`` rows are not meaningful (the caller masks the warm-up); a NaN in a
    window makes the sum NaN.
    """
    w = len(weights)
    return correlate1d(x, weights, axis=-1, mode="constant", cval=np.nan, origin=(w - 1) // 2)


def _idx_first(x: np.ndarray, w: int, func: Callable[..., np.ndarray]) -> np.ndarray:
    """Qlib's ``IdxMax``/``IdxMin``: 1-based position of the *first* extremum in the window.

    Bottleneck's ``move_argmax`` breaks ties towards the newest row; run on the reversed
    series its window is the forward one and its newest row is the oldest of ours.
    """
    rev = func(x[:, ::-1], w, axis=-1)[:, ::-1]  # rev[s]: offset of the first extremum of x[s:s+w]
    out = np.full_like(x, np.nan)
    out[:, w - 1:] = rev[:, :x.shape[1] - w + 1] + 1.0
    return out


def _quantiles(x: np.ndarray, w: int, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Rolling quantiles with linear interpolation (pandas/numpy ``linear``), NaN when the
    window holds a NaN; sorts ``sliding_window_view`` blocks of a few symbols at a time."""
    s, n = x.shape
    outs = [np.full_like(x, np.nan) for _ in qs]
    if n < w:
        return outs
    has_nan = ~np.isfinite(bn.move_mean(x, w, axis=-1))
    step = max(1, _QUANTILE_BLOCK // (n * w))
    for a in range(0, s, step):
        block = np.sort(sliding_window_view(x[a:a + step], w, axis=-1), axis=-1)
        for q, out in zip(qs, outs, strict=True):
            pos = q * (w - 1)
            lo = int(np.floor(pos))
            frac = pos - lo
            hi = min(lo + 1, w - 1)
            out[a:a + step, w - 1:] = block[..., lo] + (block[..., hi] - block[..., lo]) * frac
    for out in outs:
        out[has_nan] = np.nan
    return outs


def _corr(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    """Rolling Pearson correlation over the window's pairs where both values are finite
    (pandas' ``rolling().corr``, which Qlib calls, treats inf as NaN and skips NaN pairs); NaN
    with fewer than 2 pairs or where either window std is isclose(0, atol=2e-5) (Qlib's rule)."""
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        x, y = np.where(bad, np.nan, x), np.where(bad, np.nan, y)
    mx, my = bn.move_mean(x, w, axis=-1, min_count=2), bn.move_mean(y, w, axis=-1, min_count=2)
    sx = bn.move_std(x, w, axis=-1, ddof=1, min_count=2)
    sy = bn.move_std(y, w, axis=-1, ddof=1, min_count=2)
    count = bn.move_sum((~bad).astype(np.float64), w, axis=-1) if bad.any() else float(w)
    cov = (bn.move_mean(x * y, w, axis=-1, min_count=2) - mx * my) * (count / (count - 1.0))
    out = cov / (sx * sy)
    out[(sx <= _STD_ATOL) | (sy <= _STD_ATOL)] = np.nan
    return out


# --- the frame -----------------------------------------------------------------------------

def alpha158(prices: pd.DataFrame) -> pd.DataFrame:
    """Qlib's Alpha158 factors of every price row (pure; the input is not modified).

    Parameters
    ----------
    prices : pandas.DataFrame
        Long frame with ``symbol, date, open, high, low, close, volume`` (adjusted prices and
        volume, as the market store holds them) and optionally ``vwap``; any row order.
        Rows with a missing or non-positive price or a missing or negative volume are
        invalid: NaN features, skipped by the windows.

    Returns
    -------
    pandas.DataFrame
        ``symbol, date`` then one float32 column per name of :func:`alpha158_names`
        (157 without ``vwap``, 158 with it), one row per input row, sorted by
        ``symbol, date``, with a ``RangeIndex``. NaN until a feature's window is full.

    Raises
    ------
    DataValidationError
        A required column is missing or a (symbol, date) pair occurs twice.
    """
    frame = _sorted(prices)
    block = alpha158_values(frame)
    result = pd.DataFrame(block, columns=alpha158_names(vwap="vwap" in prices.columns), copy=False)
    result.insert(0, "date", frame["date"].to_numpy())
    result.insert(0, "symbol", frame["symbol"].array)
    return result


def _sorted(prices: pd.DataFrame) -> pd.DataFrame:
    check_columns(prices)
    cols = ["open", "high", "low", "close", "volume"] + (["vwap"] if "vwap" in prices.columns else [])
    frame = prices[["symbol", "date", *cols]]
    if not is_sorted_by(frame, ["symbol", "date"]):
        frame = frame.sort_values(["symbol", "date"], kind="stable")
    return frame.reset_index(drop=True)


def alpha158_values(prices: pd.DataFrame, *, rows: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """The Alpha158 values of :func:`alpha158` as one float32 matrix, optionally of some rows only.

    Every factor is still computed from each stock's whole history; ``rows`` only chooses which
    rows are written, so a kept row's values do not depend on which other rows are kept.

    Parameters
    ----------
    prices : pandas.DataFrame
        As :func:`alpha158`.
    rows : ndarray of bool, shape (n,), optional
        Rows to return, in ``symbol, date`` order (e.g. the point-in-time universe's member rows
        of :func:`vfr.data.universe.membership_mask`); default every row.
    out : ndarray of float32, shape (rows kept, n_names), optional
        Where to write (e.g. a column-major slice of a larger block); overwritten entirely.

    Returns
    -------
    ndarray of float32, shape (rows kept, len(alpha158_names(vwap)))
        Columns in :func:`alpha158_names` order; ``out`` when given.

    Raises
    ------
    DataValidationError
        A required column is missing or a (symbol, date) pair occurs twice.
    ValueError
        ``rows`` or ``out`` has the wrong shape.
    """
    frame = _sorted(prices)
    has_vwap = "vwap" in frame.columns
    cols = ["open", "high", "low", "close", "volume"] + (["vwap"] if has_vwap else [])
    names = alpha158_names(vwap=has_vwap)
    n = len(frame)
    if rows is not None and (rows.dtype != bool or rows.shape != (n,)):
        raise ValueError(f"alpha158_values: rows must be a bool array of shape ({n},), "
                         f"got {rows.dtype} {rows.shape}")
    n_out = n if rows is None else int(rows.sum())
    if out is None:
        out = np.empty((n_out, len(names)), dtype=np.float32, order="F")
    elif out.shape != (n_out, len(names)) or out.dtype != np.float32:
        raise ValueError(f"alpha158_values: out must be float32 of shape {(n_out, len(names))}, "
                         f"got {out.dtype} {out.shape}")
    out[...] = np.nan
    idx_type = np.int32 if n < 2**31 else np.int64
    # output row of each input row, -1 where it is not kept
    target = np.arange(n, dtype=idx_type) if rows is None else np.where(rows, np.cumsum(rows, dtype=idx_type) - 1, -1)

    sym, _ = pd.factorize(frame["symbol"])  # integer codes: no Python string per row
    dates = frame["date"].to_numpy()
    arrays = {c: _float_values(frame[c]) for c in cols}
    new_symbol = symbol_starts(sym, dates, frame["symbol"])
    del sym
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(arrays["volume"]) & (arrays["volume"] >= 0)
        for c in ("open", "high", "low", "close"):
            valid &= np.isfinite(arrays[c]) & (arrays[c] > 0)
    dest_all = np.flatnonzero(valid).astype(idx_type)  # rows that get values
    del valid
    index = {name: j for j, name in enumerate(names)}
    if dest_all.size:
        code = (np.cumsum(new_symbol, dtype=dest_all.dtype) - 1)[dest_all]  # symbol number of each valid row
        del new_symbol
        counts = np.bincount(code)
        starts = np.concatenate([[0], np.cumsum(counts)])  # valid rows of symbol i: starts[i]:starts[i+1]
        pos = np.arange(dest_all.size, dtype=dest_all.dtype) - starts[code].astype(dest_all.dtype)
        # symbols in chunks of about _CHUNK_CELLS matrix cells: smaller intermediates, warm caches
        first = 0
        while first < len(counts):
            last = first + 1
            most = counts[first]
            while last < len(counts) and (last + 1 - first) * max(most, counts[last]) <= _CHUNK_CELLS:
                most = max(most, counts[last])
                last += 1
            part = slice(starts[first], starts[last])
            _chunk({c: arrays[c] for c in cols}, dest_all[part], target[dest_all[part]], code[part] - first,
                   pos[part], last - first, int(counts[first:last].max()), out, index)
            first = last
    return out


def _float_values(column: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing values; no copy when it is float64 already."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _chunk(arrays: dict[str, np.ndarray], dest: np.ndarray, target: np.ndarray, code: np.ndarray,
           pos: np.ndarray, n_symbols: int, width: int, block: np.ndarray, index: dict[str, int]) -> None:
    """Compute the features of one chunk of symbols (input rows ``dest``) into ``block``'s
    rows ``target`` (-1: not written)."""
    width = max(width, max(WINDOWS) + 1)  # NaN-padded: Bottleneck needs window <= length
    src = code.astype(np.int64) * width + pos  # flat index into the (symbols, width) matrices

    def wide(values: np.ndarray) -> np.ndarray:
        m = np.full(n_symbols * width, np.nan)
        m[src] = values[dest]
        return m.reshape(n_symbols, width)

    kept = target >= 0
    if not kept.any():  # none of the chunk's rows is returned
        return
    src_out = src if kept.all() else src[kept]
    target = target[kept]
    done = np.zeros(len(index), dtype=bool)
    # the chunk's output rows are one contiguous range unless rows are invalid or not kept
    rows = slice(target[0], target[-1] + 1) if target[-1] - target[0] + 1 == len(target) \
        else target

    def put(name: str, values: np.ndarray, warmup: int = 0) -> None:
        j = index[name]
        done[j] = True
        if warmup:
            values[:, :min(warmup, width)] = np.nan
        block[rows, j] = values.reshape(-1).take(src_out)  # cast to float32 on assignment
        if isinstance(rows, slice):
            column = block[rows, j]
            column[np.isinf(column)] = np.nan
        else:
            column = block[rows, j]
            block[rows[np.isinf(column)], j] = np.nan

    _compute({c: wide(a) for c, a in arrays.items()}, put)
    if not done.all():  # a programming error, not a data error
        raise RuntimeError(f"Alpha158 columns not computed: {[n for n, j in index.items() if not done[j]]}")


def _compute(m: dict[str, np.ndarray], put: Callable[..., None]) -> None:
    """Every feature, each passed once to ``put(name, values, warmup)`` (``warmup``: leading
    rows of each symbol that are NaN because the window is not full yet).

    Window-major, so that only one window's intermediates are alive at a time.
    """
    o, h, lo, c, v = m["open"], m["high"], m["low"], m["close"], m["volume"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rng = h - lo + _TINY
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        put("KMID", (c - o) / o)
        put("KLEN", (h - lo) / o)
        put("KMID2", (c - o) / rng)
        put("KUP", (h - top) / o)
        put("KUP2", (h - top) / rng)
        put("KLOW", (bottom - lo) / o)
        put("KLOW2", (bottom - lo) / rng)
        put("KSFT", (2 * c - h - lo) / o)
        put("KSFT2", (2 * c - h - lo) / rng)
        del rng, top, bottom
        for name in ("open", "high", "low", "vwap"):
            if name in m:
                put(f"{name.upper()}0", m[name] / c)

        prev_c, prev_v = _ref(c, 1), _ref(v, 1)
        ret = c / prev_c
        logv = np.log(v + 1.0)
        dlogv = np.log(v / prev_v + 1.0)  # inf after a zero-volume day: skipped by _corr
        first = np.isnan(prev_c)  # a symbol's first row: no previous close
        up = np.where(first, np.nan, (c > prev_c).astype(np.float64))
        down = np.where(first, np.nan, (c < prev_c).astype(np.float64))
        wv = np.abs(ret - 1.0) * v
        vden = v + _TINY
        diffs = {}
        for key, x, prev in (("", c, prev_c), ("V", v, prev_v)):
            d = x - prev
            diffs[key] = (np.maximum(d, 0.0), np.maximum(-d, 0.0), np.abs(d))
        del first
        for w in WINDOWS:
            full, full1 = w - 1, w  # warm-up of a level window / of a window of one-day changes
            put(f"ROC{w}", _ref(c, w) / c, w)
            mean = bn.move_mean(c, w, axis=-1)
            put(f"MA{w}", mean / c, full)
            std = bn.move_std(c, w, axis=-1, ddof=1)
            put(f"STD{w}", std / c, full)
            # BETA / RSQR / RESI: least squares of the window on x = 1..w (closed form)
            k = np.arange(1, w + 1) - (w + 1) / 2.0
            sxx = float(k @ k)
            slope = _wsum(c, k) / sxx
            put(f"BETA{w}", slope / c, full)
            rsqr = slope ** 2 * sxx / (std ** 2 * (w - 1))
            rsqr[std <= _STD_ATOL] = np.nan
            put(f"RSQR{w}", rsqr, full)
            del rsqr, std
            # Resi: c_t - (intercept + slope * w) = c_t - mean - slope * (w - (w + 1) / 2)
            put(f"RESI{w}", (c - mean - slope * ((w - 1) / 2.0)) / c, full)
            del mean, slope
            hi, low = bn.move_max(h, w, axis=-1), bn.move_min(lo, w, axis=-1)
            put(f"MAX{w}", hi / c, full)
            put(f"MIN{w}", low / c, full)
            put(f"RSV{w}", (c - low) / (hi - low + _TINY), full)
            del hi, low
            qu, qd = _quantiles(c, w, (0.8, 0.2))
            put(f"QTLU{w}", qu / c, full)
            put(f"QTLD{w}", qd / c, full)
            del qu, qd
            r = bn.move_rank(c, w, axis=-1)  # Bottleneck's [-1, 1] -> pandas rank(pct=True)
            put(f"RANK{w}", ((r + 1.0) * (w - 1) / 2.0 + 1.0) / w, full)
            del r
            imax, imin = _idx_first(h, w, bn.move_argmax), _idx_first(lo, w, bn.move_argmin)
            put(f"IMAX{w}", imax / w, full)
            put(f"IMIN{w}", imin / w, full)
            put(f"IMXD{w}", (imax - imin) / w, full)
            del imax, imin
            put(f"CORR{w}", _corr(c, logv, w), full)
            put(f"CORD{w}", _corr(ret, dlogv, w), full1)
            cntp, cntn = bn.move_mean(up, w, axis=-1), bn.move_mean(down, w, axis=-1)
            put(f"CNTP{w}", cntp, full1)
            put(f"CNTN{w}", cntn, full1)
            put(f"CNTD{w}", cntp - cntn, full1)
            del cntp, cntn
            for key, (gain, loss, absd) in diffs.items():
                sp, sn = bn.move_sum(gain, w, axis=-1), bn.move_sum(loss, w, axis=-1)
                total = bn.move_sum(absd, w, axis=-1) + _TINY
                put(f"{key}SUMP{w}", sp / total, full1)
                put(f"{key}SUMN{w}", sn / total, full1)
                put(f"{key}SUMD{w}", (sp - sn) / total, full1)
                del sp, sn, total
            put(f"VMA{w}", bn.move_mean(v, w, axis=-1) / vden, full)
            put(f"VSTD{w}", bn.move_std(v, w, axis=-1, ddof=1) / vden, full)
            put(f"WVMA{w}", bn.move_std(wv, w, axis=-1, ddof=1) / (bn.move_mean(wv, w, axis=-1) + _TINY), full1)
