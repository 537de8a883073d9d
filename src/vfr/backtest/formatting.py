"""Tables a portfolio manager can read: DataFrames to HTML with formatted cells.

:func:`html_table` renders a DataFrame as an HTML table whose cells are formatted by what they
hold, never dumped raw: percentages for returns, rates, weights and shares (``12.34%``), dates
without a time of day (``2008-09-15``), integers with thousands separators (``2,508``), ratios
with three decimals, p-values with three decimals or ``< 0.001``, missing values as a dash.
A frame much wider than tall (metrics as columns) is turned so the metrics become rows, which
keeps the table within the page. Used by :func:`vfr.backtest.write_report` and
:func:`vfr.risk.report.risk_report`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

__all__ = ["column_kind", "format_value", "html_table"]

#: Dash shown for a missing value.
MISSING = "\u2013"

#: Column name patterns (regex, searched in the lower-cased name) -> kind, first match wins.
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"p_?value|^p$|pvalue", "pvalue"),
    (r"^(n|n_.*|.*_n|days|dates|n_dates|n_periods|breaches|count|names|positions|rows|folds|"
     r"max_drawdown_duration|obs|observations)$", "int"),
    (r"annual_turnover", "times"),
    (r"sharpe|sortino|calmar|information_ratio|profit_factor|beta|ratio|t_stat|lr$|_lr|icir|"
     r"auc|log_loss|f1|accuracy|precision|recall|^ic|_ic|rank_ic|autocorrelation|correlation|std_error|"
     r"^sharpe$|^lower$|^upper$|^median$|spread|score|prob|importance|gain", "num"),
    (r"return|cagr|volatility|drawdown|rate|share|turnover|weight|alpha|tracking_error|hit|coverage|"
     r"^var|var_|^es|es_|expected_shortfall|loss|win|worst|best|level|fwd|excess|exposure|mdd|cost", "pct"),
)


def column_kind(name: object, values: pd.Series | None = None, kinds: Mapping[str, str] | None = None) -> str:
    """How the cells of column ``name`` are formatted: ``pct``, ``num``, ``int``, ``times``,
    ``pvalue``, ``date``, ``usd``, ``bool`` or ``text``.

    ``kinds`` (column name -> kind) wins; else the values' dtype (dates, booleans, integers,
    text) and then the name (:data:`KIND_PATTERNS`) decide; a float column no pattern names
    is ``num`` (three decimals), or ``int`` when every value is whole.
    """
    key = str(name[-1] if isinstance(name, tuple) else name)
    if kinds and key in kinds:
        return kinds[key]
    if values is not None:
        if pd.api.types.is_datetime64_any_dtype(values):
            return "date"
        if pd.api.types.is_bool_dtype(values):
            return "bool"
        if pd.api.types.is_integer_dtype(values):
            return "int"
        if not pd.api.types.is_numeric_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.notna().sum() < values.notna().sum():
                return "text"
            values = numeric
    low = key.lower()
    if "usd" in low or "capital" in low or "value" in low and "pvalue" not in low:
        return "usd"
    for pattern, kind in KIND_PATTERNS:
        if re.search(pattern, low):
            return kind
    if values is not None:
        v = pd.to_numeric(values, errors="coerce").dropna()
        if len(v) and bool(np.all(np.isclose(v, np.round(v)))) and bool((v.abs() >= 1).all()):
            return "int"
    return "num"


def format_value(value: object, kind: str) -> str:
    """One cell as text (not escaped). Missing or infinite numbers are a dash."""
    if value is None or value is pd.NaT:
        return MISSING
    if isinstance(value, (pd.Timestamp, np.datetime64)) or kind == "date":
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError):
            return str(value)
        if ts is pd.NaT:
            return MISSING
        return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else f"{ts:%Y-%m-%d %H:%M}"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Number):
        return str(value)
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        return MISSING
    if kind == "pct":
        return f"{x:.2%}" if abs(x) < 10 else f"{x:,.0%}"
    if kind == "int":
        return f"{x:,.0f}"
    if kind == "times":
        return f"{x:,.2f}\u00d7"
    if kind == "usd":
        return f"{x:,.0f} USD"
    if kind == "pvalue":
        return "< 0.001" if x < 0.001 else f"{x:.3f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.3f}"


def _label(value: object) -> str:
    if isinstance(value, tuple):
        return " \u00b7 ".join(_label(v) for v in value if str(v) not in ("", "-"))
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return format_value(value, "date")
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format_value(value, "num" if isinstance(value, float) and not float(value).is_integer() else "int")
    return str(value)


def html_table(frame: pd.DataFrame | pd.Series, *, kinds: Mapping[str, str] | None = None,
               row_kinds: bool = False, labels: Mapping[str, str] | None = None, max_columns: int = 9,
               index_name: str | None = None, css_class: str = "data") -> Markup:
    """``frame`` as an HTML table with every cell formatted (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
    kinds : mapping, optional
        Column (or, with ``row_kinds``, row) name -> kind of :func:`format_value`, over the
        guess of :func:`column_kind`.
    row_kinds : bool, default False
        The kind follows the row name rather than the column (a table with one metric a row).
    labels : mapping, optional
        Column / row name -> label shown in the header (e.g. ``cagr`` -> ``CAGR``).
    max_columns : int, default 9
        A frame with more columns than this and fewer rows than columns is transposed (its
        columns become rows, their kinds going with them) so that it fits the page.
    index_name : str, optional
        Header of the index column (default the index's name, else empty).
    """
    df = frame.to_frame() if isinstance(frame, pd.Series) else pd.DataFrame(frame)
    if df.shape[1] > max_columns and df.shape[0] < df.shape[1]:
        df, row_kinds = df.T, not row_kinds
    if isinstance(df.index, pd.DatetimeIndex):
        index_labels = [format_value(v, "date") for v in df.index]
    else:
        index_labels = [_label(v) for v in df.index]
    names = [n for n in df.index.names if n is not None]
    head_index = index_name if index_name is not None else " / ".join(map(str, names))
    labels = labels or {}

    def show(name: object) -> str:  # snake_case names wrap at their words: "portfolio max drawdown"
        return labels.get(str(name), _label(name).replace("_", " "))

    head = "".join(f"<th>{escape(show(c))}</th>" for c in df.columns)
    if row_kinds:
        cell_kinds = [[column_kind(r, df.loc[r] if df.index.is_unique else None, kinds)] * df.shape[1]
                      for r in df.index]
        index_labels = [show(r) for r in df.index]
    else:
        per_col = [column_kind(c, df.iloc[:, j], kinds) for j, c in enumerate(df.columns)]
        cell_kinds = [per_col] * len(df)
    body = []
    for i, (label, row) in enumerate(zip(index_labels, df.itertuples(index=False, name=None), strict=True)):
        cells = "".join(f"<td>{escape(format_value(v, cell_kinds[i][j]))}</td>" for j, v in enumerate(row))
        body.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return Markup(f'<table class="{css_class}"><thead><tr><th>{escape(head_index)}</th>{head}</tr></thead>'
                  f'<tbody>{"".join(body)}</tbody></table>')
