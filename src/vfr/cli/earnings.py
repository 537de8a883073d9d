"""`vfr earnings ...`: the early-signal model (large positive EPS surprise ~7 trading days ahead)."""

from __future__ import annotations

from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, err, fail, make_settings, out, show_table
from vfr.errors import VFRError

app = typer.Typer(help="Early-signal model: predict a large positive EPS surprise before the report.",
                  no_args_is_help=True)


def _years(spec: str | None) -> tuple[int, ...] | None:
    """'2015-2019' or '2016,2018' -> years; None -> default."""
    from vfr.errors import UsageError

    if not spec:
        return None
    try:
        if "-" in spec:
            a, b = (int(x) for x in spec.split("-", 1))
            if b < a:
                raise ValueError
            return tuple(range(a, b + 1))
        return tuple(sorted(int(x) for x in spec.split(",")))
    except ValueError:
        fail(UsageError(f"--test-years expects FIRST-LAST or Y1,Y2,..., got {spec!r}"))


@app.command("train")
def train_cmd(
    test_years: Annotated[str | None, typer.Option(
        help="Walk-forward test years, FIRST-LAST or Y1,Y2 (default: the last five with reports).")] = None,
    lead: Annotated[int | None, typer.Option(min=1, max=60, help="Trading days before the report (default 7).")] = None,
    label_threshold: Annotated[float | None, typer.Option(
        help="Label: surprise above this percent (default 20).")] = None,
    algorithm: Annotated[str, typer.Option(help="Model zoo algorithm.")] = "lightgbm",
    home: HomeOpt = None,
) -> None:
    """Gate the data, walk-forward evaluate per year, fit, calibrate and register the model."""
    from rich.progress import Progress

    from vfr.earnings.stage import EarningsConfig, stage_earnings_train

    settings = make_settings(home)
    config = EarningsConfig.from_settings(settings, lead=lead, label_threshold=label_threshold,
                                          test_years=_years(test_years), algorithm=algorithm)
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("early signal: yearly walk-forward", total=len(config.test_years or ()) or None)
            result = stage_earnings_train(settings, config, progress=lambda n: progress.advance(task, n))
    except (VFRError, ValueError) as exc:
        fail(exc, report=settings.reports_dir / "early-signal-quality-report.md")
    table = result.per_year.merge(result.rule_per_year.rename(columns={"roc_auc": "rule_auc",
                                                                       "precision": "rule_precision"}),
                                  on="year", how="left")
    cols = ["year", "n", "base_rate", "roc_auc", "rule_auc", "precision", "precision_top_decile", "brier",
            "brier_base_rate", "brier_skill"]
    show_table(table[cols], f"Early signal, yearly walk-forward ({result.n_events} reports)")
    out.print(f"registered {settings.earnings_model_name} v{result.version}: {result.reason}")
    out.print(f"table: {result.report_path}", soft_wrap=True)


@app.command("predict")
def predict_cmd(
    date: Annotated[str | None, typer.Option(help="As-of date YYYY-MM-DD (default: last feature date).")] = None,
    within_days: Annotated[int, typer.Option(
        min=1, max=90, help="Reports expected within this many calendar days.")] = 14,
    symbol: Annotated[list[str] | None, typer.Option("--symbol", help="Only these symbols (repeatable).")] = None,
    home: HomeOpt = None,
) -> None:
    """Score the reports expected soon through champion -> previous version -> rule -> none."""
    from vfr.earnings.stage import stage_earnings_predict

    try:
        with err.status("early signal: scoring"):
            table = stage_earnings_predict(make_settings(home), date=date, within_days=within_days, symbols=symbol)
    except (VFRError, ValueError) as exc:
        fail(exc)
    if table.empty:
        out.print("no reports expected in the window")
        return
    cols = ["symbol", "expected_report_date", "report_date_source", "days_to_report", "probability",
            "prediction", "confidence_level", "source"]
    show = table[cols].assign(expected_report_date=table["expected_report_date"].dt.strftime("%Y-%m-%d"))
    show_table(show, f"Early signal as of {table['asof_date'].iloc[0]:%Y-%m-%d}")


@app.command("evaluate")
def evaluate_cmd(home: HomeOpt = None) -> None:
    """The stored walk-forward predictions, per test year: AUC, precision, Brier vs the base rate."""
    from vfr.data import MarketStore, tables
    from vfr.earnings.walkforward import per_year_table
    from vfr.errors import StageError

    settings = make_settings(home)
    try:
        with MarketStore.from_settings(settings) as store:
            if not store.has_table(tables.EARNINGS_PREDICTIONS_OOS):
                raise StageError("earnings evaluate: no walk-forward predictions; run `vfr earnings train` first")
            preds = store.read_table(tables.EARNINGS_PREDICTIONS_OOS)
    except (VFRError, ValueError) as exc:
        fail(exc)
    version = preds["model_version"].iloc[0] if len(preds) else "?"
    show_table(per_year_table(preds), f"Early signal walk-forward (registered as v{version})")


@app.command("backtest")
def backtest_cmd(
    cost_bps: Annotated[float | None, typer.Option(
        min=0, help="Cost per side, bp (default commission + slippage).")] = None,
    home: HomeOpt = None,
) -> None:
    """Trade the walk-forward predictions: buy 7 days before the report, sell the day after it."""
    import pandas as pd

    from vfr.earnings.stage import stage_earnings_backtest

    try:
        with err.status("early signal: trade"):
            bt = stage_earnings_backtest(make_settings(home), cost_bps=cost_bps)
    except (VFRError, ValueError) as exc:
        fail(exc)
    show_table(bt.summary, "Flagged vs unflagged (excess over the equal-weighted universe, per trade)",
                         floats="{:.4f}")
    show_table(pd.DataFrame(bt.portfolio).T.reset_index(names="portfolio"), "Calendar-time portfolios")
    out.print(f"report: {bt.report_path}", soft_wrap=True)  # a path is never wrapped


@app.command("monitor")
def monitor_cmd(
    window_days: Annotated[int, typer.Option(min=1, help="Settled reports of the last this many days.")] = 365,
    home: HomeOpt = None,
) -> None:
    """Settle served predictions from the reports, show live AUC/precision/Brier/PSI per version, alert."""
    from vfr.retraining.jobs import early_signal_monitoring

    try:
        with err.status("early signal: outcomes and performance"):
            result = early_signal_monitoring(make_settings(home), window_days=window_days)
    except (VFRError, ValueError) as exc:
        fail(exc)
    import pandas as pd

    out.print(f"outcomes settled: {result['written']}")
    perf = pd.DataFrame(result["performance"])
    if perf.empty:
        out.print("no settled early-signal predictions in the window")
    else:
        show_table(perf, f"Early signal, live performance (last {window_days} days)")
    for message in result["alerts"]:
        out.print(f"alert: {message}")


@app.command("retrain")
def retrain_cmd(home: HomeOpt = None) -> None:
    """Retrain, then promote the challenger if it ranks the reports its champion never saw as well."""
    from vfr.earnings.stage import stage_earnings_retrain

    settings = make_settings(home)
    try:
        with err.status("early signal: retraining"):
            decision = stage_earnings_retrain(settings)
    except (VFRError, ValueError) as exc:
        fail(exc, report=settings.reports_dir / "early-signal-quality-report.md")
    out.print(f"challenger v{decision.challenger}: {decision.action}; champion "
              f"v{decision.champion_before} -> v{decision.champion_after}: {decision.reason}")
