"""Self-contained HTML report (one HTML file plus PNG charts in one folder).

Charts are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global
backend switch), the page with an inline jinja2 template (autoescaped); images are
referenced by relative file names so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from vfr.backtest.formatting import format_value, html_table
from vfr.backtest.metrics import drawdown_series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vfr.backtest.engine import BacktestResult
    from vfr.backtest.factor import FactorReport

__all__ = ["monthly_returns", "write_report"]

#: Rows of the metrics table: key in ``summary_metrics`` -> (label, format).
METRIC_ROWS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "annual_volatility": ("Annual volatility", "pct"),
    "sharpe_ratio": ("Sharpe ratio", "num"),
    "sortino_ratio": ("Sortino ratio", "num"),
    "max_drawdown": ("Max drawdown", "pct"),
    "calmar_ratio": ("Calmar ratio", "num"),
    "max_drawdown_duration": ("Max drawdown duration (days)", "int"),
    "hit_rate": ("Hit rate", "pct"),
    "average_win": ("Average winning day", "pct"),
    "average_loss": ("Average losing day", "pct"),
    "profit_factor": ("Profit factor", "num"),
    "alpha": ("Alpha (annual)", "pct"),
    "beta": ("Beta", "num"),
    "information_ratio": ("Information ratio", "num"),
    "tracking_error": ("Tracking error", "pct"),
    "turnover_per_rebalance": ("Turnover per rebalance", "pct"),
    "annual_turnover": ("Annual turnover", "times"),
    "n_periods": ("Days", "int"),
}

#: Metric key -> label shown in table headers.
METRIC_LABELS: dict[str, str] = {k: label for k, (label, _) in METRIC_ROWS.items()}
#: Metric key -> cell format (:func:`vfr.backtest.formatting.format_value`).
METRIC_KINDS: dict[str, str] = {k: kind for k, (_, kind) in METRIC_ROWS.items()}


def describe_params(params: Mapping[str, Any]) -> str:
    """A backtest's settings in words for a report header: ``top 2, every 5 trading days, costs
    10 bps per unit traded, ...`` (no Python dicts; unset and off settings left out)."""
    shown = []
    for key, value in params.items():
        if value is None or value is False or key in ("cost_bps",):
            continue
        if isinstance(value, Mapping):
            inner = ", ".join(f"{k.replace('_', ' ')} {format_value(v, 'num').removesuffix('.000')}"
                              for k, v in value.items() if v not in (None, 0, 0.0, False))
            shown.append(f"{key.replace('_', ' ')}: {inner or 'none'}")
        elif isinstance(value, float):
            shown.append(f"{key.replace('_', ' ')} {format_value(value, 'num').removesuffix('.000')}")
        else:
            shown.append(f"{key.replace('_', ' ')} {value}")
    if "cost_bps" in params:
        shown.append(f"proportional cost charged {format_value(params['cost_bps'], 'num').removesuffix('.000')} bp")
    return "; ".join(shown)


#: Page and table style shared by VFR's HTML reports (this report, the factor tear sheet).
REPORT_CSS = """body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
""" + REPORT_CSS + """td { white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.meta { color: #666; font-size: 0.85em; }
.evidence li { margin: 0.3em 0; }
tbody th { text-align: left; font-weight: normal; background: #fafafa; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Period {{ period }} &middot; generated {{ generated }}</p>
{% if summary %}
<h2>Evidence summary</h2>
<ul class="evidence">
{% for line in summary %}<li>{{ line }}</li>
{% endfor %}</ul>
{% endif %}
<p class="meta">Settings: {{ params }}</p>
{% if links %}
<h2>Tear sheets</h2>
<ul class="links">
{% for link in links %}<li><a href="{{ link.href }}">{{ link.title }}</a></li>
{% endfor %}</ul>
{% endif %}
<h2>Metrics</h2>
{{ metrics_table }}
<p class="meta">Strategy metrics are over the invested period (first entry to end); each
benchmark over its days with data. Sharpe/Sortino: risk-free 0, 252 days a year.</p>
{% for chart in charts %}
<h2>{{ chart.title }}</h2>
<img src="{{ chart.file }}" alt="{{ chart.title }}">
{% endfor %}
{% for t in tables %}
<h2>{{ t.title }}</h2>
{{ t.html }}
{% endfor %}
</body>
</html>
"""


def _fmt(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if kind == "pct":
        return format_value(value, "pct")  # 12.34%, or 1,111% from 10 (1,000%) on
    if kind == "times":
        return f"{value:.2f}&times;"
    if kind == "int":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """HTML table: one row per metric, one column per series (strategy net, gross, ...)."""
    cols = list(metrics)
    keys = [k for k in METRIC_ROWS if any(k in metrics[c] for c in cols)]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = []
    for key in keys:
        label, kind = METRIC_ROWS[key]
        cells = "".join(f"<td>{_fmt(metrics[c].get(key, float('nan')), kind)}</td>" for c in cols)
        body.append(f'<tr><td title="{key}">{label} <code>{key}</code></td>{cells}</tr>')
    return f'<table class="metrics"><thead><tr><th>metric</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _figure(**kwargs) -> Figure:
    """A matplotlib Figure (matplotlib is imported on first use: ``import vfr.backtest`` stays light)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(fig: Figure, path: Path) -> None:
    """Render ``fig`` with the Agg canvas (no pyplot global state) and save it as PNG at 110 dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def _equity_chart(result: BacktestResult, path: Path) -> None:
    fig = _figure(figsize=(10, 4.5))
    ax = fig.add_subplot()
    daily = result.daily
    ax.plot(daily.index, daily["equity"], label="strategy (net)", lw=1.4, color="C0")
    ax.plot(daily.index, (1 + daily["gross_return"]).cumprod(), label="strategy (gross)", lw=0.9,
            color="C0", alpha=0.5, ls="--")
    for i, col in enumerate(result.benchmarks.columns, start=1):
        r = result.benchmarks[col]
        if r.notna().any():
            first, last = r.first_valid_index(), r.last_valid_index()
            # a benchmark starting late starts at the strategy's equity on its first day
            base = float(daily["equity"].shift(1, fill_value=1.0).loc[first])
            eq = (1 + r.loc[first:last].fillna(0.0)).cumprod() * base
            ax.plot(eq.index, eq.to_numpy(), label=col, lw=1.0, color=f"C{i}")
    ax.set_yscale("log")
    ax.set_title("Growth of 1 USD: strategy vs benchmarks")
    ax.set_xlabel("date")
    ax.set_ylabel("growth of 1 (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    save_figure(fig, path)


def _drawdown_chart(result: BacktestResult, path: Path) -> None:
    fig = _figure(figsize=(10, 3))
    ax = fig.add_subplot()
    dd = drawdown_series(result.daily["net_return"])
    ax.fill_between(dd.index, dd.to_numpy(), 0.0, color="C3", alpha=0.4, label="strategy (net)")
    ew = result.benchmarks.get("equal_weight")
    if ew is not None and ew.notna().any():
        ax.plot(dd.index, drawdown_series(ew).to_numpy(), color="C1", lw=0.8, label="equal_weight")
    ax.set_title("Drawdown from the previous peak")
    ax.set_xlabel("date")
    ax.set_ylabel("drawdown")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    save_figure(fig, path)


def _rolling_sharpe_chart(result: BacktestResult, path: Path, window: int = 252) -> None:
    fig = _figure(figsize=(10, 3))
    ax = fig.add_subplot()
    series = {"strategy (net)": result.daily["net_return"]}
    for col in result.benchmarks.columns:
        series[col] = result.benchmarks[col]
    for i, (name, r) in enumerate(series.items()):
        roll = r.rolling(window, min_periods=window // 2)
        sr = roll.mean() / roll.std() * np.sqrt(252)
        ax.plot(sr.index, sr.to_numpy(), lw=1.3 if i == 0 else 0.8, label=name, color=f"C{i}")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_title(f"Rolling {window}-day Sharpe ratio (annualised)")
    ax.set_xlabel("date")
    ax.set_ylabel(f"rolling {window}-day Sharpe")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded monthly returns as a year x month table (pure; NaN where no data).

    Parameters
    ----------
    returns : pandas.Series
        Daily simple returns on a DatetimeIndex.

    Returns
    -------
    pandas.DataFrame
        Index year, columns 1..12, values ``prod(1 + r) - 1`` over the month's days.
    """
    r = pd.Series(returns, dtype="float64").dropna()
    m = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    m.index.names = ["year", "month"]
    return m.unstack("month").reindex(columns=range(1, 13))


def _monthly_heatmap(result: BacktestResult, path: Path) -> None:
    table = monthly_returns(result.daily["net_return"])
    fig = _figure(figsize=(10, max(2.5, 0.32 * len(table) + 1.2)))
    ax = fig.add_subplot()
    vals = table.to_numpy()
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 0.1
    im = ax.imshow(vals, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), ["J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"])
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1%}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, format=lambda v, _: f"{v:.0%}", label="net return of the month")
    ax.set_title("Monthly net returns")
    ax.set_xlabel("month")
    ax.set_ylabel("year")
    save_figure(fig, path)


def _ic_decay_chart(factor: FactorReport, path: Path) -> None:
    fig = _figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    d = factor.decay
    x = np.arange(len(d))
    ax.bar(x - 0.2, d["ic_mean"].to_numpy(), width=0.4, label="IC")
    ax.bar(x + 0.2, d["rank_ic_mean"].to_numpy(), width=0.4, label="Rank IC")
    ax.set_xticks(x, [f"{h}d" for h in d.index])
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_title("IC decay: mean correlation of score and forward return")
    ax.set_xlabel("forward horizon (trading days)")
    ax.set_ylabel("mean correlation over dates")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    save_figure(fig, path)


def _quantile_chart(factor: FactorReport, path: Path) -> None:
    fig = _figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    q = factor.quantile_returns
    x = np.arange(len(q))
    width = 0.8 / max(1, q.shape[1])
    for i, col in enumerate(q.columns):
        h = int(str(col).split("_")[-1])
        ax.bar(x + (i - (q.shape[1] - 1) / 2) * width, q[col].to_numpy() / h * 1e4, width=width,
               label=f"{col} (bp/day)")
    top = int(max(q.index)) if len(q) else 0
    ax.set_xticks(x, [f"Q{v}" + (" (lowest scores)" if int(v) == 1 else " (top scores)" if int(v) == top else "")
                      for v in q.index])
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_title(f"Mean excess return by score quantile (Q{top} holds the top scores)")
    ax.set_xlabel("score quantile at the date (Q1 = lowest)")
    ax.set_ylabel("excess return vs universe, bp per day")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    save_figure(fig, path)


def _ic_chart(ic: pd.DataFrame, path: Path, window: int) -> None:
    fig = _figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    for i, col in enumerate(c for c in ("ic", "rank_ic") if c in ic.columns):
        s = ic[col].astype("float64")
        ax.plot(s.index, s.to_numpy(), lw=0.4, alpha=0.35, color=f"C{i}")
        roll = s.rolling(window, min_periods=max(1, window // 3)).mean()
        ax.plot(roll.index, roll.to_numpy(), lw=1.4, color=f"C{i}",
                label=f"{col} ({window}-date rolling mean; overall mean {s.mean():.3f})")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_title("Correlation of the score with the forward excess return, by date")
    ax.set_xlabel("date")
    ax.set_ylabel("correlation")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    save_figure(fig, path)


def _importance_chart(importance: pd.Series, path: Path, top: int = 30) -> None:
    s = pd.Series(importance, dtype="float64").dropna().sort_values(ascending=False).head(top)[::-1]
    fig = _figure(figsize=(8, max(2.5, 0.28 * len(s) + 1)))
    ax = fig.add_subplot()
    ax.barh([str(i) for i in s.index], s.to_numpy(), color="C2")
    ax.set_title(f"Top {len(s)} features of the champion model")
    ax.set_xlabel(str(importance.name) if importance.name is not None else "importance")
    ax.set_ylabel("feature")
    ax.grid(True, axis="x", alpha=0.3)
    save_figure(fig, path)


def write_report(
    result: BacktestResult,
    out_dir: str | Path,
    *,
    title: str,
    ic: pd.DataFrame | None = None,
    feature_importance: pd.Series | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    ic_window: int = 63,
    factor: FactorReport | None = None,
    links: dict[str, str] | None = None,
    summary: Sequence[str] | None = None,
) -> Path:
    """Write ``report.html`` and its PNG charts into ``out_dir``.

    Parameters
    ----------
    result : BacktestResult
        Output of :func:`vfr.backtest.run_backtest`.
    out_dir : str or pathlib.Path
        Folder (created if needed); existing files of the same names are overwritten.
    title : str
        Page title and heading.
    ic : pandas.DataFrame, optional
        Output of :func:`vfr.ml.ic_by_date` (columns ``ic`` and/or ``rank_ic`` on a
        date index); adds ``ic.png`` with a rolling mean over ``ic_window`` dates.
    feature_importance : pandas.Series, optional
        Feature name -> importance; adds ``feature_importance.png`` (top 30 bars).
    extra_tables : dict[str, pandas.DataFrame], optional
        Title -> table, rendered as HTML tables after the charts.
    ic_window : int, default 63
        Rolling window of the IC chart, in dates.
    factor : FactorReport, optional
        Output of :func:`vfr.backtest.factor.evaluate_factor`; adds ``ic_decay.png``,
        ``quantile_returns.png`` and their tables.
    links : dict[str, str], optional
        Title -> address (relative to ``out_dir``) of companion pages, such as the QuantStats
        and alphalens tear sheets of :mod:`vfr.backtest.tearsheet`; listed under
        "Tear sheets" above the metrics.
    summary : sequence of str, optional
        Sentences stating what the run shows (e.g. :func:`vfr.pipeline.evidence_summary`),
        shown first, under "Evidence summary".

    Returns
    -------
    pathlib.Path
        Path of the HTML file. Charts: ``equity.png`` (log scale, with benchmarks),
        ``drawdown.png``, ``rolling_sharpe.png`` (252 days), ``monthly_returns.png``
        (heatmap) and, when given, ``ic.png`` and ``feature_importance.png``, all
        referenced relatively.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = [{"title": "Equity curve vs benchmarks (log scale)", "file": "equity.png"},
              {"title": "Drawdown", "file": "drawdown.png"}]
    _equity_chart(result, out / "equity.png")
    _drawdown_chart(result, out / "drawdown.png")
    if len(result.daily) > 2:
        _rolling_sharpe_chart(result, out / "rolling_sharpe.png")
        _monthly_heatmap(result, out / "monthly_returns.png")
        charts += [{"title": "Rolling Sharpe ratio (252 days)", "file": "rolling_sharpe.png"},
                   {"title": "Monthly returns (net)", "file": "monthly_returns.png"}]
    if factor is not None:
        _ic_decay_chart(factor, out / "ic_decay.png")
        _quantile_chart(factor, out / "quantile_returns.png")
        charts += [{"title": "IC decay over horizons", "file": "ic_decay.png"},
                   {"title": f"Quantile returns (excess of the universe mean; Q{len(factor.quantile_returns)} "
                             "holds the top scores)", "file": "quantile_returns.png"}]
    if ic is not None and len(ic) > 0:
        _ic_chart(ic, out / "ic.png", int(ic_window))
        charts.append({"title": "Information coefficient (IC, Rank IC) by date", "file": "ic.png"})
    if feature_importance is not None and len(feature_importance) > 0:
        _importance_chart(feature_importance, out / "feature_importance.png")
        charts.append({"title": "Feature importance", "file": "feature_importance.png"})

    tables = []
    if ic is not None and len(ic) > 0:
        cols = [c for c in ("ic", "rank_ic") if c in ic.columns]
        stats = pd.DataFrame({
            "mean": ic[cols].mean(), "std": ic[cols].std(),
            "t_stat": ic[cols].mean() / ic[cols].std() * np.sqrt(ic[cols].count()),
            "share_positive": (ic[cols] > 0).sum() / ic[cols].count(), "dates": ic[cols].count(),
        })
        tables.append({"title": "IC summary (t-stat over all dates; overlapping forward windows inflate it)",
                       "html": html_table(stats, kinds={"mean": "num", "std": "num"}, index_name="series")})
    if factor is not None:
        tables.append({"title": "Factor evaluation: IC decay", "html": html_table(
            factor.decay, index_name="horizon (days)")})
        qt = factor.quantile_returns.assign(turnover=factor.turnover)
        qt.index = [f"Q{q}" + (" (top scores)" if q == max(qt.index) else " (lowest scores)" if q == 1 else "")
                    for q in qt.index]
        tables.append({"title": "Factor evaluation: quantile mean excess returns and turnover "
                                f"(rank autocorrelation {factor.rank_autocorrelation:.3f})",
                       "html": html_table(qt, index_name="quantile")})
    for name, frame in (extra_tables or {}).items():
        tables.append({"title": name, "html": html_table(pd.DataFrame(frame).head(200), labels=METRIC_LABELS,
                                                                     kinds=METRIC_KINDS)})

    daily = result.daily
    params = describe_params(result.params)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(_TEMPLATE).render(
        title=title,
        period=f"{daily.index[0]:%Y-%m-%d} to {daily.index[-1]:%Y-%m-%d}" if len(daily) else "empty",
        params=params,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metrics_table=Markup(_metrics_table(result.metrics)),
        charts=charts,
        tables=tables,
        summary=list(summary or []),
        links=[{"title": t, "href": h} for t, h in (links or {}).items()],
    )
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
