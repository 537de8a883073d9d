"""Tear sheets (issue 19): QuantStats' HTML tear sheet of a real backtest, alphalens' factor tear
sheet of a real score, both linked from VFR's report by `vfr backtest --tearsheet
--factor-tearsheet`, and a one-line error naming the extra when a library is missing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SMALL_SYMBOLS, SP500_PRICES, require_shared
from vfr.backtest import (
    FACTOR_FILE,
    QUANTSTATS_FILE,
    BacktestConfig,
    TearsheetError,
    run_backtest,
    write_factor_tearsheet,
    write_quantstats_tearsheet,
)
from vfr.config import Settings
from vfr.features import build_features
from vfr.scoring import classic_scores


@pytest.fixture(scope="module")
def real() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Adjusted prices of 20 real stocks, 2016-2019, and their classic scores."""
    require_shared()
    from vfr.data import adjust_prices

    raw = pd.read_parquet(SP500_PRICES, filters=[("symbol", "in", SMALL_SYMBOLS),
                                                 ("date", ">=", pd.Timestamp("2016-01-01"))])
    prices = adjust_prices(raw.reset_index(drop=True))
    scores = classic_scores(build_features(prices))[["date", "symbol", "classic_score"]]
    return prices, scores.rename(columns={"classic_score": "score"})


def test_quantstats_tearsheet_of_a_real_backtest(real, tmp_path: Path) -> None:
    pytest.importorskip("quantstats", reason="the tearsheet extra (pip install 'vfr[tearsheet]')")
    prices, scores = real
    result = run_backtest(prices, scores, BacktestConfig(top_n=5, rebalance="monthly"))
    path = write_quantstats_tearsheet(result, tmp_path / "qs" / QUANTSTATS_FILE, title="classic top 5")
    html = path.read_text()
    assert path.stat().st_size > 10_000
    for section in ("Key Performance Metrics", "EOY Returns", "Worst 10 Drawdowns", "Cumulative Returns"):
        assert section in html, section
    assert "classic top 5" in html and "equal_weight" in html  # the benchmark (no external one given)


def test_factor_tearsheet_of_a_real_score(real, tmp_path: Path) -> None:
    pytest.importorskip("alphalens", reason="the tearsheet extra (pip install 'vfr[tearsheet]')")
    prices, scores = real
    path = write_factor_tearsheet(scores, prices, tmp_path, periods=(1, 5), quantiles=5)
    html = path.read_text()
    assert path.name == FACTOR_FILE
    for section in ("Quantiles Statistics", "Returns Analysis", "Information Analysis", "Turnover Analysis",
                    "IC Mean", "Mean Period Wise Spread", "Mean Factor Rank Autocorrelation"):
        assert section in html, section
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 5 and all((tmp_path / name).stat().st_size > 1000 for name in images)


@pytest.mark.parametrize(("module", "package"), [("quantstats", "quantstats"), ("alphalens", "alphalens-reloaded")])
def test_a_missing_library_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         module: str, package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now raises ImportError
    frame = pd.DataFrame({"date": pd.to_datetime(["2020-01-02"]), "symbol": ["A"], "score": [1.0]})
    with pytest.raises(TearsheetError, match=re.escape("pip install 'vfr[tearsheet]'")) as info:
        if module == "quantstats":
            write_quantstats_tearsheet(None, tmp_path / "x.html")  # type: ignore[arg-type]
        else:
            write_factor_tearsheet(frame, frame.assign(close=1.0), tmp_path)
    assert package in str(info.value) and "\n" not in str(info.value)


def test_backtest_command_links_both_tear_sheets_from_its_report(real, tmp_path: Path) -> None:
    """`vfr backtest --tearsheet --factor-tearsheet` on a small real store: both pages beside
    report.html, linked from it."""
    pytest.importorskip("quantstats")
    pytest.importorskip("alphalens")
    from typer.testing import CliRunner

    from vfr.cli import app
    from vfr.pipeline import stage_features, stage_ingest

    raw = pd.read_parquet(SP500_PRICES, filters=[("symbol", "in", SMALL_SYMBOLS[:10]),
                                                 ("date", ">=", pd.Timestamp("2016-01-01"))])
    raw.to_parquet(tmp_path / "small.parquet")
    home = tmp_path / "home"
    settings = Settings(home=home)
    stage_ingest(settings, tmp_path / "small.parquet")
    stage_features(settings)
    result = CliRunner().invoke(app, ["backtest", "--top-n", "3", "--start", "2017-01-01", "--tearsheet",
                                      "--factor-tearsheet", "--home", str(home)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output[-3000:]
    report = Path(result.output.strip().splitlines()[-1].removeprefix("report: "))
    html = report.read_text()
    assert "Tear sheets" in html
    assert f'href="{QUANTSTATS_FILE}"' in html and f'href="{FACTOR_FILE}"' in html
    assert "Key Performance Metrics" in (report.parent / QUANTSTATS_FILE).read_text()
    assert "Information Analysis" in (report.parent / FACTOR_FILE).read_text()


def test_stage_backtest_checks_the_extra_before_reading_anything(monkeypatch: pytest.MonkeyPatch,
                                                                 settings: Settings) -> None:
    """A missing library stops `vfr backtest --tearsheet` first (not after a long backtest)."""
    from vfr.pipeline import stage_backtest

    monkeypatch.setitem(sys.modules, "quantstats", None)
    with pytest.raises(TearsheetError, match=re.escape("pip install 'vfr[tearsheet]'")):
        stage_backtest(settings, tearsheet=True)  # the store is empty: without the check, a StageError
