"""Tear sheets of third-party libraries beside VFR's own report (issue 19).

* :func:`write_quantstats_tearsheet`: QuantStats' HTML tear sheet of a backtest's daily net
  returns against a benchmark (the optional extra ``vfr[tearsheet]``).
* :func:`write_factor_tearsheet`: alphalens(-reloaded)' factor tear sheet of any score (its
  quantile statistics, returns, information and turnover tables and its main plots), as one
  HTML page with PNG charts. alphalens is in the same extra.

Both libraries are imported inside the function that needs them: a missing one is a
:class:`TearsheetError` (one line, naming the extra), and ``import vfr.backtest`` stays light.
The numbers VFR itself reports (IC decay, quantile returns, turnover) come from
:func:`vfr.backtest.evaluate_factor`, which ``tests/backtest/test_factor.py`` checks against
alphalens; the tear sheets are alphalens' and QuantStats' own presentations, for readers used
to them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import jinja2
import pandas as pd
from markupsafe import Markup

from vfr.backtest.report import REPORT_CSS, save_figure
from vfr.errors import VFRError
from vfr.metrics import ic_by_date

if TYPE_CHECKING:
    from vfr.backtest.engine import BacktestResult

__all__ = ["QUANTSTATS_FILE", "FACTOR_FILE", "TearsheetError", "require_tearsheet_libraries",
           "write_factor_tearsheet", "write_quantstats_tearsheet"]

#: File names written beside ``report.html`` by ``vfr backtest --tearsheet / --factor-tearsheet``.
QUANTSTATS_FILE = "quantstats-tearsheet.html"
FACTOR_FILE = "factor-tearsheet.html"

EXTRA = "tearsheet"
_PACKAGES = {"quantstats": "quantstats", "alphalens": "alphalens-reloaded"}


class TearsheetError(VFRError, RuntimeError):
    """A tear sheet cannot be written (its library is missing, or it has no data)."""


def _import(module: str) -> ModuleType:
    """Import ``module`` (quantstats or alphalens), or raise a one-line :class:`TearsheetError`
    naming the ``vfr[tearsheet]`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TearsheetError(f"the tear sheet needs {_PACKAGES[module]}, which is not installed: "
                             f"pip install 'vfr[{EXTRA}]'") from None


def require_tearsheet_libraries(*, quantstats: bool = False, alphalens: bool = False) -> None:
    """Raise :class:`TearsheetError` now (before a long backtest) when a needed library is missing."""
    for name, wanted in (("quantstats", quantstats), ("alphalens", alphalens)):
        if wanted:
            _import(name)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the libraries' chatter: matplotlib's missing-font messages, their deprecation /
    runtime warnings and alphalens' prints to stdout (a CLI's stdout is its result)."""
    font_logger = logging.getLogger("matplotlib.font_manager")
    level = font_logger.level
    font_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        font_logger.setLevel(level)


def _benchmark_returns(result: BacktestResult, returns: pd.Series) -> pd.Series:
    """The benchmark of the tear sheet: the run's ``relative_to`` series when it has a return
    on every invested day, else ``equal_weight`` (always complete)."""
    name = str(result.params.get("relative_to") or "equal_weight")
    bench = result.benchmarks.get(name)
    if bench is None or bench.reindex(returns.index).isna().any():
        name, bench = "equal_weight", result.benchmarks["equal_weight"]
    return bench.reindex(returns.index).fillna(0.0).rename(name)


def write_quantstats_tearsheet(result: BacktestResult, path: str | Path, *, title: str = "VFR strategy") -> Path:
    """Write QuantStats' HTML tear sheet of ``result``'s daily net returns.

    Parameters
    ----------
    result : BacktestResult
        Output of :func:`vfr.backtest.run_backtest`; its net returns from the first entry
        day (the invested period, as VFR's own metrics) are the strategy.
    path : str or pathlib.Path
        HTML file to write (its folder is created).
    title : str
        Title of the page.

    Returns
    -------
    pathlib.Path
        ``path``. The benchmark is the run's ``relative_to`` series (e.g. ``sp500``) when it
        covers every invested day, else ``equal_weight``; risk-free rate 0.

    Raises
    ------
    TearsheetError
        QuantStats is not installed (``pip install 'vfr[tearsheet]'``), or the run has fewer
        than two invested days.
    """
    qs = _import("quantstats")
    returns = result.daily["net_return"].loc[result.first_entry:].astype("float64").rename("strategy")
    if len(returns) < 2:
        raise TearsheetError("the tear sheet needs at least two invested days")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        qs.reports.html(returns, benchmark=_benchmark_returns(result, returns), rf=0.0, title=title,
                        output=str(path), download_filename=str(path))
    return path


_FACTOR_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
""" + REPORT_CSS + """img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.meta { color: #666; font-size: 0.85em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">alphalens-reloaded {{ version }} &middot; {{ meta }}</p>
{% for section in sections %}
<h2>{{ section.title }}</h2>
{% for t in section.tables %}{{ t }}{% endfor %}
{% for chart in section.charts %}<img src="{{ chart.file }}" alt="{{ chart.title }}">{% endfor %}
{% endfor %}
</body>
</html>
"""


def _figure(height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(11, height), layout="constrained")


def _html(frame: pd.DataFrame) -> Markup:
    return Markup(frame.to_html(float_format="{:.4f}".format, na_rep="–"))


def _information_coefficient(data: pd.DataFrame) -> pd.DataFrame:
    """alphalens' ``factor_information_coefficient`` (Spearman IC per date and period) through
    the vectorised :func:`vfr.metrics.ic_by_date` (the same numbers; alphalens' per-date scipy
    calls take most of the tear sheet's time)."""
    periods = [c for c in data.columns if c not in ("factor", "factor_quantile", "group")]
    flat = data.reset_index().rename(columns={data.index.names[0]: "date"})
    ic = pd.DataFrame({p: ic_by_date(flat, "factor", p, min_names=2)["rank_ic"] for p in periods})
    ic.index.name = "date"
    return ic


def write_factor_tearsheet(scores: pd.DataFrame, prices: pd.DataFrame, out_dir: str | Path, *,
                           periods: Sequence[int] = (1, 5, 21), quantiles: int = 5,
                           title: str = "Factor tear sheet", file_name: str = FACTOR_FILE) -> Path:
    """Write alphalens' factor tear sheet of a score as HTML tables and PNG plots.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long frame ``date``, ``symbol``, ``score`` (NaN = no opinion; dropped).
    prices : pandas.DataFrame
        Long frame ``symbol``, ``date``, ``close`` (adjusted); its pivot is alphalens'
        ``prices`` (forward returns over each symbol's next ``h`` rows of the calendar).
    out_dir : str or pathlib.Path
        Folder of the page and its charts (``factor_*.png``), created if needed.
    periods : sequence of int
        Forward-return horizons in trading days (alphalens' ``periods``).
    quantiles : int
        Equal-count score buckets per date.
    title, file_name : str
        Page title and HTML file name.

    Returns
    -------
    pathlib.Path
        The HTML page. Sections, as alphalens names its tables: *Quantiles Statistics*,
        *Returns Analysis* (with the mean period-wise return by quantile and, with period 1,
        the cumulative returns), *Information Analysis* (IC by date and its histogram) and
        *Turnover Analysis*. Returns are demeaned across the universe (``long_short=True``).

    Raises
    ------
    TearsheetError
        alphalens is not installed (``pip install 'vfr[tearsheet]'``), or no score has a
        forward return.
    """
    al = _import("alphalens")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    periods = tuple(int(p) for p in periods)
    factor = scores.dropna(subset=["score"]).set_index(["date", "symbol"])["score"].sort_index()
    wide = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    with _quiet():
        try:
            data = al.utils.get_clean_factor_and_forward_returns(factor, wide, quantiles=quantiles, periods=periods,
                                                                 max_loss=1.0)
        except (ValueError, al.utils.MaxLossExceededError) as exc:
            raise TearsheetError(f"the factor tear sheet has no data: {str(exc).splitlines()[0]}") from None
        perf, plotting = al.performance, al.plotting
        factor_returns = perf.factor_returns(data, demeaned=True)
        mean_q, _ = perf.mean_return_by_quantile(data, demeaned=True)
        mean_q_rate = mean_q.apply(al.utils.rate_of_return, axis=0, base_period=mean_q.columns[0])
        mean_q_date, std_q_date = perf.mean_return_by_quantile(data, by_date=True, demeaned=True)
        mean_q_date_rate = mean_q_date.apply(al.utils.rate_of_return, axis=0, base_period=mean_q_date.columns[0])
        std_q_date_rate = std_q_date.apply(al.utils.std_conversion, axis=0, base_period=std_q_date.columns[0])
        alpha_beta = perf.factor_alpha_beta(data, factor_returns, demeaned=True)
        spread, _ = perf.compute_mean_returns_spread(mean_q_date_rate, data["factor_quantile"].max(),
                                                     data["factor_quantile"].min(), std_err=std_q_date_rate)
        ic = _information_coefficient(data)
        q_range = sorted(data["factor_quantile"].unique())
        turnover = {p: pd.concat([perf.quantile_turnover(data["factor_quantile"], q, p) for q in q_range], axis=1)
                    for p in periods}
        autocorr = pd.DataFrame({p: perf.factor_rank_autocorrelation(data, p) for p in periods})
        turnover_table, autocorr_table = plotting.plot_turnover_table(autocorr, turnover, return_df=True)

        charts: dict[str, list[dict[str, str]]] = {"returns": [], "information": []}

        def chart(section: str, name: str, chart_title: str, height: float, draw) -> None:
            fig = _figure(height)
            draw(fig)
            save_figure(fig, out / name)
            charts[section].append({"file": name, "title": chart_title})

        chart("returns", "factor_quantile_returns.png", "Mean period-wise return by factor quantile", 4,
              lambda fig: plotting.plot_quantile_returns_bar(mean_q_rate, ax=fig.add_subplot()))
        if "1D" in factor_returns:
            chart("returns", "factor_cumulative_returns.png",
                  "Factor-weighted long/short portfolio cumulative return (1D)", 4,
                  lambda fig: plotting.plot_cumulative_returns(factor_returns["1D"], period="1D",
                                                               ax=fig.add_subplot()))
            chart("returns", "factor_cumulative_by_quantile.png", "Cumulative return by quantile (1D)", 4,
                  lambda fig: plotting.plot_cumulative_returns_by_quantile(mean_q_date["1D"], period="1D",
                                                                           ax=fig.add_subplot()))
        n = len(ic.columns)
        chart("information", "factor_ic.png", "Information coefficient by date", 3.2 * n,
              lambda fig: plotting.plot_ic_ts(ic, ax=list(fig.subplots(n, 1, squeeze=False)[:, 0])))
        chart("information", "factor_ic_hist.png", "IC histogram", 3.5,
              lambda fig: plotting.plot_ic_hist(ic, ax=list(fig.subplots(1, n, squeeze=False)[0])))
        sections = [
            {"title": "Quantiles Statistics",
             "tables": [_html(plotting.plot_quantile_statistics_table(data, return_df=True))], "charts": []},
            {"title": "Returns Analysis",
             "tables": [_html(plotting.plot_returns_table(alpha_beta, mean_q_rate, spread, return_df=True))],
             "charts": charts["returns"]},
            {"title": "Information Analysis",
             "tables": [_html(plotting.plot_information_table(ic, return_df=True).T)],
             "charts": charts["information"]},
            {"title": "Turnover Analysis", "tables": [_html(turnover_table), _html(autocorr_table)], "charts": []},
        ]
    dates = data.index.get_level_values("date")
    meta = (f"{dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d} &middot; {data.index.get_level_values(1).nunique()} "
            f"assets &middot; {quantiles} quantiles &middot; periods {', '.join(f'{p}D' for p in periods)} "
            "&middot; returns demeaned across the universe")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(_FACTOR_TEMPLATE).render(title=title, version=getattr(al, "__version__", "?"),
                                                    meta=Markup(meta), sections=sections)
    path = out / file_name
    path.write_text(html, encoding="utf-8")
    return path
