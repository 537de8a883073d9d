"""Risk report of a portfolio at a date: VaR/ES, stress tests, forecasts, VaR backtest.

One HTML page plus PNG charts in a folder (matplotlib object API on the Agg canvas, no
pyplot; jinja2 autoescaped), like :func:`vfr.backtest.write_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from vfr.backtest.formatting import html_table
from vfr.backtest.report import save_figure
from vfr.risk.forecast import (
    DrawdownForecast,
    SharpeForecast,
    drawdown_forecast,
    sharpe_forecast,
)
from vfr.risk.stress import stress_test
from vfr.risk.var import VaRBacktest, VaRResult, portfolio_var, var_backtest

__all__ = ["RiskReport", "risk_report"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td { white-space: nowrap; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .meta { color: #666; font-size: 0.85em; }
tbody th { text-align: left; font-weight: normal; background: #fafafa; } .evidence li { margin: 0.3em 0; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="meta">{{ meta }} &middot; generated {{ generated }}</p>
{% if summary %}<h2>Evidence summary</h2><ul class="evidence">
{% for line in summary %}<li>{{ line }}</li>{% endfor %}</ul>
{% endif %}
{% for t in tables %}<h2>{{ t.title }}</h2>{{ t.html }}{% if t.note %}<p class="meta">{{ t.note }}</p>{% endif %}
{% endfor %}
{% for c in charts %}<h2>{{ c.title }}</h2><img src="{{ c.file }}" alt="{{ c.title }}">{% endfor %}
</body></html>
"""


@dataclass
class RiskReport:
    """Everything :func:`risk_report` computed, and the HTML path."""

    path: Path
    var: VaRResult
    stress: pd.DataFrame
    sharpe: SharpeForecast | None
    drawdown: DrawdownForecast | None
    backtest: dict[str, VaRBacktest]


def _var_chart(bt: VaRBacktest, path: Path) -> None:
    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    f = bt.frame
    ax.plot(f.index, f["return"].to_numpy(), lw=0.4, color="0.5", label="daily return")
    ax.plot(f.index, -f["var"].to_numpy(), lw=1.0, color="C3", label=f"-VaR {bt.level:.0%} (forecast)")
    br = f[f["breach"]]
    ax.scatter(br.index, br["return"].to_numpy(), s=8, color="C3", zorder=3, label=f"breaches ({bt.breaches})")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title(f"Daily returns against the one-day VaR {bt.level:.0%} forecast ({bt.breaches} breaches "
                 f"in {bt.n:,} days, {1 - bt.level:.0%} expected)")
    ax.set_xlabel("date")
    ax.set_ylabel("daily return")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    save_figure(fig, path)


def _dd_chart(dd: DrawdownForecast, path: Path) -> None:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    ax.hist(dd.samples, bins=50, color="C0", alpha=0.7)
    for v, ls in ((dd.median, "-"), (dd.lower, "--"), (dd.upper, "--")):
        ax.axvline(v, color="k", ls=ls, lw=0.8)
    ax.set_title(f"Bootstrap distribution of the maximum drawdown over the next {dd.horizon} days "
                 f"(median and {dd.level:.0%} band dashed)")
    ax.set_xlabel(f"maximum drawdown over the next {dd.horizon} days (bootstrap)")
    ax.set_ylabel("bootstrap paths")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    save_figure(fig, path)


def _html(df: pd.DataFrame, **kwargs) -> Markup:
    return html_table(df, **kwargs)


def kupiec_verdict(bt: VaRBacktest, alpha: float = 0.05) -> str:
    """The Kupiec test's verdict in words, e.g. ``rejected at 5%: the VaR model under-predicts
    losses (12 breaches in 1,000 days, 5 expected)``."""
    expected = (1 - bt.level) * bt.n
    counts = f"{bt.breaches:,} breaches in {bt.n:,} days, {expected:,.1f} expected"
    if not np.isfinite(bt.kupiec_pvalue):
        return f"not testable ({counts})"
    if bt.kupiec_pvalue >= alpha:
        return f"not rejected at {alpha:.0%}: breaches are in line with the VaR level ({counts})"
    side = "under-predicts losses (too many breaches)" if bt.breaches > expected else \
        "over-predicts losses (too few breaches: the VaR is too cautious)"
    return f"rejected at {alpha:.0%}: the VaR model {side} ({counts})"


def _headline(var: VaRResult, stress: pd.DataFrame, sharpe: SharpeForecast | None, dd: DrawdownForecast | None,
              capital: float) -> list[str]:
    """The report's first lines: one-day VaR/ES, the worst stress window, the Sharpe and
    drawdown forecasts, in words."""
    lines = []
    if "historical" in var.table.index:
        row = var.table.loc["historical"]
        lines.append(f"One-day historical VaR {var.level:.0%}: {row['var']:.2%} of capital "
                     f"({row['var'] * capital:,.0f} USD of {capital:,.0f}); expected shortfall "
                     f"{row['es']:.2%} ({row['es'] * capital:,.0f} USD).")
    if "portfolio_return" in stress.columns and stress["portfolio_return"].notna().any():
        worst = stress["portfolio_return"].idxmin()
        lines.append(f"Worst stress window: {worst}, portfolio return {stress.loc[worst, 'portfolio_return']:.1%}.")
    if sharpe is not None:
        sig = "different from 0" if sharpe.lower > 0 or sharpe.upper < 0 else "not distinguishable from 0"
        lines.append(f"Sharpe ratio {sharpe.sharpe:.2f} ({sharpe.level:.0%} interval {sharpe.lower:.2f} to "
                     f"{sharpe.upper:.2f}: {sig}).")
    if dd is not None:
        lines.append(f"Maximum drawdown over the next {dd.horizon} days: median {dd.median:.1%} "
                     f"({dd.level:.0%} interval {dd.lower:.1%} to {dd.upper:.1%}).")
    return lines


def risk_report(prices: pd.DataFrame, weights: pd.Series, date: str | pd.Timestamp, out_dir: str | Path, *,
                strategy_returns: pd.Series | None = None, benchmark: pd.Series | None = None,
                level: float = 0.99, capital: float = 1e6, window: int = 500,
                windows: dict[str, tuple[str, str]] | None = None, title: str = "VFR risk report") -> RiskReport:
    """Compute the risk of ``weights`` at ``date`` and write ``report.html`` with charts.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close``. VaR/ES and forecasts use data up to ``date``
        only; stress tests replay past windows on the current weights.
    weights : pandas.Series
        Symbol -> weight.
    date : str or Timestamp
        Valuation date.
    out_dir : str or pathlib.Path
        Folder (created).
    strategy_returns : pandas.Series, optional
        Daily net returns of the strategy that produced the portfolio (e.g. a backtest);
        used for the VaR backtest and the Sharpe / drawdown forecasts. Default: the
        fixed-weight portfolio's returns over the history up to ``date``.
    benchmark : pandas.Series, optional
        Index levels for the stress tests.
    level : float, default 0.99
    capital : float, default 1e6
        USD value for the VaR/ES in currency.
    window : int, default 500
        Estimation window in days.
    windows : dict, optional
        Extra stress windows (name -> (first, last)), added to the defaults.
    title : str

    Returns
    -------
    RiskReport
    """
    from vfr.risk.stress import STRESS_WINDOWS
    from vfr.risk.var import asset_returns

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = pd.Timestamp(date)
    var = portfolio_var(prices, weights, date, level=level, window=window, capital=capital)
    var10 = portfolio_var(prices, weights, date, level=level, window=window, capital=capital, horizon=10)
    stress = stress_test(prices, weights, {**STRESS_WINDOWS, **(windows or {})}, benchmark=benchmark)
    if strategy_returns is None:
        hist = asset_returns(prices, date, 100_000, list(weights.index)).fillna(0.0)
        strategy_returns = hist.reindex(columns=weights.index, fill_value=0.0) @ weights.to_numpy()
    r = pd.Series(strategy_returns, dtype="float64").loc[:date].dropna()
    sharpe = sharpe_forecast(r) if r.size > 2 and r.std() > 0 else None
    dd = drawdown_forecast(r) if r.size > 21 else None
    backtests = {}
    if r.size > window + 20:
        for m in ("historical", "parametric"):
            for lv in sorted({0.95, level}):
                backtests[f"{m} {lv:.0%}"] = var_backtest(r, level=lv, window=window, method=m)
    charts, tables, verdicts = [], [], []
    vt = pd.concat({"1 day": var.table, "10 days": var10.table})
    tables.append({"title": f"Value at risk and expected shortfall at {level:.0%}", "html": _html(
        vt, index_name="horizon \u00b7 method",
        labels={"var": "VaR", "es": "ES", "var_usd": "VaR (USD)", "es_usd": "ES (USD)"}),
                   "note": f"{var.window} daily returns up to {var.date:%Y-%m-%d}; losses as positive fractions "
                           f"of capital and in USD for {capital:,.0f}. Parametric: Gaussian; Monte Carlo: "
                           "multivariate normal, 20,000 paths."})
    tables.append({"title": "Portfolio", "html": _html(weights.rename("weight").to_frame(), index_name="symbol"),
                   "note": ""})
    tables.append({"title": "Stress tests (historical windows replayed on today's weights)",
                   "html": _html(stress, index_name="window"),
                   "note": "coverage = share of the weight with its own price history in the window; the rest "
                           "is proxied by the equal-weight universe."})
    if sharpe is not None:
        tables.append({"title": "Sharpe ratio forecast (Lo 2002 standard error)", "html": _html(pd.DataFrame(
            {"sharpe": [sharpe.sharpe], "std_error": [sharpe.std_error], "lower": [sharpe.lower],
             "upper": [sharpe.upper], "level": [sharpe.level], "days": [sharpe.n]}, index=["annualised Sharpe"]),
            index_name=""), "note": ""})
    if dd is not None:
        tables.append({"title": "Maximum drawdown forecast, next 252 days (block bootstrap)", "html": _html(
            pd.DataFrame({"median": [dd.median], "lower": [dd.lower], "upper": [dd.upper], "level": [dd.level],
                          **{f"P(MDD <= {k:.0%})": [v] for k, v in dd.prob_worse_than.items()}},
                         index=[f"max drawdown, next {dd.horizon} days"]),
            kinds={"median": "pct", "lower": "pct", "upper": "pct"}, index_name=""), "note": ""})
        _dd_chart(dd, out / "drawdown_forecast.png")
        charts.append({"title": "Drawdown forecast distribution", "file": "drawdown_forecast.png"})
    if backtests:
        bt_table = pd.DataFrame({k: {"days": b.n, "breaches": b.breaches, "breach_rate": b.breach_rate,
                                     "expected_rate": 1 - b.level, "kupiec_lr": b.kupiec_lr,
                                     "kupiec_pvalue": b.kupiec_pvalue, "verdict (Kupiec, 5%)":
                                         kupiec_verdict(b).split(":")[0]}
                                 for k, b in backtests.items()}).T
        tables.append({"title": "VaR backtest: forecasts vs realised returns", "html": _html(
            bt_table, kinds={"days": "int", "breaches": "int", "kupiec_lr": "num"}, index_name="VaR model"),
                       "note": f"rolling {window}-day forecasts made with data up to the day before. Kupiec's "
                               "proportion-of-failures test: a p-value below 0.05 rejects the VaR model."})
        for k, b in backtests.items():
            verdicts.append(f"Kupiec VaR backtest, {k} VaR: {kupiec_verdict(b)}.")
        key = f"historical {level:.0%}"
        _var_chart(backtests[key], out / "var_backtest.png")
        charts.append({"title": f"VaR backtest ({key})", "file": "var_backtest.png"})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    verdicts = _headline(var, stress, sharpe, dd, capital) + verdicts
    html = env.from_string(_TEMPLATE).render(
        summary=verdicts, title=title, meta=f"valuation date {date:%Y-%m-%d}, {len(weights)} positions",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), tables=tables, charts=charts)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return RiskReport(path=path, var=var, stress=stress, sharpe=sharpe, drawdown=dd, backtest=backtests)
