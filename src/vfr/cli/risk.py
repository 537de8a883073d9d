"""`vfr risk ...`: VaR / ES, stress tests, forecasts and VaR backtest of a strategy's portfolio."""

from __future__ import annotations

from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, err, fail, make_settings, out, show_table
from vfr.errors import UsageError, VFRError

app = typer.Typer(help="Risk of a strategy's portfolio: VaR/ES, stress tests, forecasts.", no_args_is_help=True)


@app.command("report")
def risk_report_cmd(
    date: Annotated[str | None, typer.Option(help="Valuation date YYYY-MM-DD (default: last scored day).")] = None,
    strategy: Annotated[str, typer.Option(help="'ml' (walk-forward probabilities) or 'classic'.")] = "ml",
    top_n: Annotated[int | None, typer.Option(help="Names held.")] = None,
    method: Annotated[str, typer.Option(help="equal, max_sharpe, min_volatility or hrp.")] = "equal",
    max_weight: Annotated[float, typer.Option(help="Upper weight bound of the optimisers.")] = 0.1,
    level: Annotated[float, typer.Option(help="VaR confidence level.")] = 0.99,
    capital: Annotated[float, typer.Option(help="Portfolio value in USD.")] = 1e6,
    window: Annotated[int, typer.Option(help="Estimation window in trading days.")] = 500,
    stress: Annotated[list[str] | None, typer.Option(
        help="Extra stress window NAME:YYYY-MM-DD:YYYY-MM-DD (repeatable).")] = None,
    home: HomeOpt = None,
) -> None:
    """Write a risk report (HTML) for the strategy's portfolio at a date."""
    from vfr.risk.stage import stage_risk

    windows = {}
    for spec in stress or []:
        parts = spec.split(":")
        if len(parts) != 3:
            fail(UsageError(f"--stress expects NAME:START:END, got {spec!r}"))
        windows[parts[0]] = (parts[1], parts[2])
    try:
        with err.status("risk report"):
            rep = stage_risk(make_settings(home), date=date, strategy=strategy, top_n=top_n, method=method,
                             max_weight=max_weight, level=level, capital=capital, window=window, windows=windows)
    except (VFRError, ValueError) as exc:
        fail(exc)
    show_table(rep.var.table.reset_index(), f"VaR / ES at {level:.0%}, {rep.var.date:%Y-%m-%d}")
    st = rep.stress[["portfolio_return", "portfolio_max_drawdown", "benchmark_return", "coverage"]]
    show_table(st.astype(float).reset_index(), "Stress tests")
    for name, bt in rep.backtest.items():
        out.print(f"VaR backtest {name}: {bt.breaches} breaches in {bt.n} days ({bt.breach_rate:.2%}, "
                  f"Kupiec p={bt.kupiec_pvalue:.3f})")
    out.print(f"report: {rep.path}")
