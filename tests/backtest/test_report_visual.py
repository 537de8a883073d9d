"""Visual check of the HTML reports: no raw DataFrame dumps a portfolio manager would have to decode.

Each report (the backtest report of :func:`vfr.backtest.write_report` with every optional part,
and the risk report of :func:`vfr.risk.report.risk_report` on real prices) is checked twice:

* as HTML, with the standard library's :class:`html.parser.HTMLParser` (runs everywhere, also on
  CI without a browser): no table cell holds an unformatted float with 4 or more decimals, a
  time of day ``00:00:00``, ``np.float64(...)``/``Timestamp(...)`` reprs, or ``nan``/``None``;
  the evidence summary comes before the first table; every chart has a title;
* rendered in headless Chromium (Playwright driving ``/usr/bin/chromium``; skipped when either
  is missing, no browser is downloaded): the same cell checks on the rendered text, no table
  and no page wider than the 1280 px viewport (``scrollWidth > clientWidth``), and every image
  loaded. Screenshots go to ``test-artifacts/`` (or ``$VFR_TEST_ARTIFACTS``).

The chart images' axis labels and titles are checked on the matplotlib figures in
``test_every_chart_has_a_title_and_labelled_axes``.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import BacktestConfig, run_backtest, write_report
from vfr.backtest.factor import evaluate_factor
from vfr.ml import ic_by_date

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1280, "height": 900}

#: What a raw dump leaves in a table cell.
RAW_FLOAT = re.compile(r"(?<![\d.])-?\d+\.\d{4,}(?!\d)")
RAW_PATTERNS = {
    "unformatted float (4+ decimals)": RAW_FLOAT,
    "time of day 00:00:00": re.compile(r"00:00:00"),
    "numpy/pandas repr": re.compile(r"np\.(float|int|bool)\d*\(|Timestamp\(|numpy\.|dtype"),
    "nan/None cell": re.compile(r"^\s*(nan|NaN|None|NaT|<NA>|inf|-inf)\s*$"),
    "Python dict": re.compile(r"\{'\w+':"),
}


def raw_dumps(cells: list[str]) -> list[str]:
    """``"<what>: <cell>"`` for each cell that looks like a raw dump."""
    return [f"{what}: {cell!r}" for cell in cells for what, rx in RAW_PATTERNS.items() if rx.search(cell)]


class ReportParser(HTMLParser):
    """Text of every table cell, the headings in order, the images and the position of the
    evidence summary and the first table."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.headings: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.order: list[str] = []
        self.meta: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._meta: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.order.append("table")
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "p" and ("class", "meta") in attrs:
            self._meta = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            text = "".join(self._heading).strip()
            self.headings.append(text)
            self.order.append(f"h:{text}")
            self._heading = None
        elif tag == "p" and self._meta is not None:
            self.meta.append("".join(self._meta).strip())
            self._meta = None

    def handle_data(self, data: str) -> None:
        for buf in (self._cell, self._heading, self._meta):
            if buf is not None:
                buf.append(data)


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def check_html(path: Path) -> ReportParser:
    """The pure-HTML check (no browser): fails on raw dumps in cells and in the header lines."""
    rep = parse(path)
    assert rep.cells, f"{path}: no table cells"
    bad = raw_dumps(rep.cells) + [f"header: {m}" for m in raw_dumps(rep.meta)]
    assert not bad, f"{path}: raw dumps in the report:\n" + "\n".join(bad[:20])
    assert "Evidence summary" in rep.headings, rep.headings
    assert rep.order.index("h:Evidence summary") < rep.order.index("table"), "evidence summary is not first"
    for img in rep.images:
        assert img.get("alt") and (path.parent / str(img["src"])).exists(), img
    return rep


# -- the reports under test ---------------------------------------------------------------
@pytest.fixture(scope="module")
def backtest_report(tmp_path_factory) -> Path:
    """A backtest report with every part: IC, factor evaluation, importance, extra tables of
    the kinds the pipeline writes (a wide comparison, dates, integers, missing values)."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2019-01-01", periods=400)
    syms = [f"S{i:02d}" for i in range(12)]
    close = pd.DataFrame(40 * np.cumprod(1 + rng.normal(0.0004, 0.02, (len(dates), len(syms))), axis=0),
                         index=dates, columns=syms)
    prices = close.rename_axis(index="date", columns="symbol").stack().rename("close").reset_index()
    scores = prices[["date", "symbol"]].assign(score=rng.normal(size=len(prices)))
    fwd = (close.shift(-5) / close - 1).rename_axis(index="date", columns="symbol").stack()
    fwd = fwd.rename("fwd_excess_1w").reset_index()
    spx = pd.Series(np.cumprod(1 + rng.normal(0, 0.01, len(dates))) * 3000, index=dates, name="sp500")
    res = run_backtest(prices, scores, BacktestConfig(top_n=3), benchmark=spx)
    ic = ic_by_date(scores.merge(fwd, on=["date", "symbol"]), "score", "fwd_excess_1w")
    factor = evaluate_factor(scores, prices, horizons=(1, 5, 10, 21))
    comparison = pd.DataFrame({f"{s} ({k})": res.metrics["strategy_net"] for s in ("classic", "ml", "composite")
                               for k in ("net", "gross")}).T
    weights = res.weights.tail(4)
    mixed = pd.DataFrame({"date": dates[:3], "rows": [2508.0, 12000.0, np.nan], "share": [0.1234567, 0.5, np.nan],
                          "t_stat": [1.23456, np.nan, -0.5]})
    out = tmp_path_factory.mktemp("backtest-report")
    return write_report(res, out, title="Visual check", ic=ic, factor=factor,
                        feature_importance=pd.Series({"mom_20": 3.0, "rsi_14": 1.0, "vol_20": 2.0}, name="gain"),
                        extra_tables={"Strategies compared": comparison, "Last weights": weights, "Mixed": mixed},
                        summary=["On these 12 stocks the model shows no reliable skill."])


@pytest.fixture(scope="module")
def risk_report_path(tmp_path_factory, sp500_raw_small) -> Path:
    from vfr.data import adjust_prices
    from vfr.data.samples import sp500_index_levels
    from vfr.risk.report import risk_report

    prices = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    w = pd.Series(0.25, index=["AAPL", "JPM", "XOM", "KO"])
    out = tmp_path_factory.mktemp("risk-report")
    return risk_report(prices, w, "2018-12-31", out, benchmark=sp500_index_levels(), level=0.99).path


@pytest.fixture(params=["backtest", "risk"])
def report(request) -> Path:
    return request.getfixturevalue("backtest_report" if request.param == "backtest" else "risk_report_path")


# -- the checks ---------------------------------------------------------------------------
def test_the_checker_catches_raw_dumps() -> None:
    assert raw_dumps(["2508.0000", "2000-03-24 00:00:00", "np.float64(-5.0)", "nan", "0.1235"]) != []
    assert len(raw_dumps(["2508.0000", "2000-03-24 00:00:00", "np.float64(-5.0)", " nan "])) == 4
    assert raw_dumps(["2,508", "2000-03-24", "-5.000", "–", "12.35%", "0.123", "< 0.001", "AAPL"]) == []


def test_report_tables_are_formatted(report: Path) -> None:
    check_html(report)


def test_backtest_report_formats_by_kind(backtest_report: Path) -> None:
    rep = check_html(backtest_report)
    cells = set(rep.cells)
    assert {"2,508", "12,000", "12.35%", "1.235", "2019-01-01", "\u2013"} <= cells, sorted(cells)[:80]
    # the wide comparison (6 rows x 20 metrics) is turned: metrics become labelled rows
    assert "CAGR" in cells and "Sharpe ratio" in cells
    assert any("top scores" in h for h in rep.headings) and any("Q5 (top scores)" == c for c in cells)
    assert not any(m.startswith("Settings: {") or "'" in m for m in rep.meta), rep.meta


def test_risk_report_states_the_var_backtest_verdict(risk_report_path: Path) -> None:
    html = risk_report_path.read_text(encoding="utf-8")
    assert re.search(r"Kupiec VaR backtest, historical 99% VaR: (rejected|not rejected) at 5%", html)
    rep = parse(risk_report_path)
    assert any(c.startswith(("rejected", "not rejected")) for c in rep.cells)


def test_every_chart_has_a_title_and_labelled_axes(monkeypatch, backtest_report: Path, tmp_path: Path,
                                                   sp500_raw_small) -> None:
    """Each figure the reports save has a title (axes or figure) and both axes labelled."""
    import vfr.backtest.report as bt_report
    import vfr.risk.report as risk_module

    figures = []
    real_save = bt_report.save_figure

    def spy(fig, path):
        figures.append((Path(path).name, fig))
        real_save(fig, path)

    monkeypatch.setattr(bt_report, "save_figure", spy)
    monkeypatch.setattr(risk_module, "save_figure", spy)
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2020-01-01", periods=300)
    close = pd.DataFrame(50 * np.cumprod(1 + rng.normal(0, 0.02, (300, 10)), axis=0), index=dates,
                         columns=[f"S{i}" for i in range(10)])
    prices = close.rename_axis(index="date", columns="symbol").stack().rename("close").reset_index()
    scores = prices[["date", "symbol"]].assign(score=rng.normal(size=len(prices)))
    fwd = (close.shift(-5) / close - 1).rename_axis(index="date", columns="symbol").stack().rename("f").reset_index()
    res = run_backtest(prices, scores, BacktestConfig(top_n=3))
    write_report(res, tmp_path / "bt", title="t", ic=ic_by_date(scores.merge(fwd, on=["date", "symbol"]), "score", "f"),
                 factor=evaluate_factor(scores, prices, horizons=(1, 5)),
                 feature_importance=pd.Series({"a": 1.0, "b": 2.0}))
    from vfr.data import adjust_prices

    real = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    risk_module.risk_report(real, pd.Series(0.5, index=["AAPL", "KO"]), "2018-12-31", tmp_path / "risk")
    names = {n for n, _ in figures}
    assert {"equity.png", "drawdown.png", "rolling_sharpe.png", "monthly_returns.png", "ic_decay.png",
            "quantile_returns.png", "ic.png", "feature_importance.png", "var_backtest.png",
            "drawdown_forecast.png"} <= names
    for name, fig in figures:
        ax = fig.axes[0]
        assert ax.get_title() or fig.get_suptitle(), f"{name}: no title"
        labels = (ax.get_xlabel(), ax.get_ylabel())
        assert all(labels), f"{name}: unlabelled axis {labels}"
    quantile = dict(figures)["quantile_returns.png"].axes[0]
    assert "top scores" in quantile.get_title() and any("top scores" in t.get_text()
                                                        for t in quantile.get_xticklabels())


# -- rendered in Chromium -----------------------------------------------------------------
def artifacts_dir() -> Path:
    path = Path(os.environ.get("VFR_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_report_renders_without_raw_dumps_in_chromium(browser, report: Path) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(report.resolve().as_uri())
        cells = page.eval_on_selector_all("td, th", "els => els.map(e => e.innerText)")
        bad = raw_dumps(cells)
        assert not bad, "\n".join(bad[:20])
        wide = page.evaluate("""() => {
            const out = [];
            const doc = document.documentElement;
            if (doc.scrollWidth > doc.clientWidth) out.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
            const body = document.body.getBoundingClientRect();
            document.querySelectorAll('table').forEach((t, i) => {
                const r = t.getBoundingClientRect();
                if (t.scrollWidth > t.clientWidth + 1 || r.right > body.right + 1 || r.width > doc.clientWidth)
                    out.push(`table ${i}: ${Math.round(r.width)} px`);
            });
            return out;
        }""")
        assert not wide, f"tables wider than the page: {wide}"
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.src)")
        assert not broken, broken
        first_h2 = page.eval_on_selector("h2", "e => e.innerText")
        assert first_h2 == "Evidence summary"
        page.screenshot(path=str(artifacts_dir() / f"report-{report.parent.name}.png"), full_page=True)
    finally:
        page.close()
