"""``BacktestConfig``: the strategy, portfolio, cost and rebalancing settings of a backtest.

One immutable object replaces the twenty keywords :func:`vfr.backtest.run_backtest` used to
take, is validated once when built, and is what :func:`vfr.pipeline.stage_backtest`, ``vfr
backtest`` and ``vfr risk`` pass down. The data of a run (prices, scores, an external
benchmark, the sector of each symbol) stays out of it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vfr.backtest.costs import CostModel

if TYPE_CHECKING:
    from vfr.config import Settings

__all__ = ["FILLS", "REBALANCE_CHOICES", "BacktestConfig"]

#: Calendar rebalancing choices (``None`` = every ``rebalance_every`` scored days).
REBALANCE_CHOICES = ("daily", "weekly", "monthly")
#: Fill prices: the close or the open of the fill day.
FILLS = ("close", "open")


def _where(name: str) -> str:
    return f"BacktestConfig.{name}"


def _integer(name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low`` (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_where(name)} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"{_where(name)} must be >= {low}, got {value}")
    return int(value)


def _real(name: str, value: Any, *, low: float, strict: bool, high: float | None = None) -> float:
    """``value`` as a finite float above ``low`` (``strict``) or at least ``low``, at most ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_where(name)} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    too_low = v <= low if strict else v < low
    if not math.isfinite(v) or too_low or (high is not None and v > high):
        bounds = f"{'(' if strict else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        raise ValueError(f"{_where(name)} must be finite and in {bounds}, got {value!r}")
    return v


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{_where(name)} must be True or False, got {value!r}")
    return bool(value)


def _date(name: str, value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{_where(name)} is not a date: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise ValueError(f"{_where(name)} is not a date: {value!r}")
    return stamp


@dataclass(frozen=True)
class BacktestConfig:
    """How a backtest selects, weights, trades and rebalances (immutable, validated).

    Attributes
    ----------
    top_n : int, default 20
        Names per leg; fewer when fewer are eligible. Ties broken by symbol order.
    rebalance_every : int, default 5
        Rebalance grid step in scored trading days (used when ``rebalance`` is None). Signal
        dates are ``i0, i0 + k, ...`` among the scored days in ``[start, end]``.
    rebalance : {"daily", "weekly", "monthly"}, optional
        Calendar rebalancing: every scored day, or the last trading day of each calendar
        week / month when it is scored (entered ``execution_lag`` days later). Overrides
        ``rebalance_every``.
    execution_lag : int, default 1
        Trading days between a signal date and the fill day (0 = fill on the signal day).
    start, end : str or pandas.Timestamp, optional
        Window (inclusive) for signal dates, entries and the reported days.
    quantile : float, optional
        Select the top (and for long-short the bottom) fraction, in ``(0, 1]``, instead of
        ``top_n``.
    long_short : bool, default False
        Long the best, short the worst (dollar neutral, legs ``+-gross_exposure/2``).
    max_weight : float, optional
        Position limit on the absolute weight of a name (> 0).
    sector_neutral : bool, default False
        Select within sectors (see :func:`vfr.backtest.select_weights`); the run then needs
        the sector of each symbol (``run_backtest(..., sectors=)``).
    min_trade : float, default 0.0
        Minimum trade size as a fraction of capital: smaller trades are skipped (the
        position keeps its drifted weight, the difference stays in cash).
    costs : CostModel, default ``CostModel(slippage_bps=10.0)``
        Commission (bps and/or per share), slippage and square-root impact.
    fill : {"close", "open"}, default "close"
        Fill at the close or at the open of the fill day.
    dividends : bool, default False
        False: dividends are reinvested in the stock through the adjusted close. True: the
        book is marked with price-only returns and each ``dividend_amount`` (ex-date) is
        paid into cash (shorts pay it), reinvested at the next rebalance.
    capital : float, default 1e7
        Starting capital in USD (> 0; scales the impact cost only).
    gross_exposure : float, default 1.0
        Sum of absolute target weights (> 0).

    Raises
    ------
    TypeError
        A field of the wrong type (e.g. ``top_n=2.5``, ``costs=10``); the message names it.
    ValueError
        A field out of range (e.g. ``top_n=0``, ``quantile=1.5``, ``fill="vwap"``, ``start``
        after ``end``); the message names it and the allowed values.
    """

    top_n: int = 20
    rebalance_every: int = 5
    rebalance: str | None = None
    execution_lag: int = 1
    start: str | pd.Timestamp | None = None
    end: str | pd.Timestamp | None = None
    quantile: float | None = None
    long_short: bool = False
    max_weight: float | None = None
    sector_neutral: bool = False
    min_trade: float = 0.0
    costs: CostModel = CostModel(slippage_bps=10.0)
    fill: str = "close"
    dividends: bool = False
    capital: float = 1e7
    gross_exposure: float = 1.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the validated values in place
        for name, low in (("top_n", 1), ("rebalance_every", 1), ("execution_lag", 0)):
            set_(self, name, _integer(name, getattr(self, name), low))
        for name in ("long_short", "sector_neutral", "dividends"):
            set_(self, name, _flag(name, getattr(self, name)))
        set_(self, "min_trade", _real("min_trade", self.min_trade, low=0.0, strict=False))
        set_(self, "capital", _real("capital", self.capital, low=0.0, strict=True))
        set_(self, "gross_exposure", _real("gross_exposure", self.gross_exposure, low=0.0, strict=True))
        if self.quantile is not None:
            set_(self, "quantile", _real("quantile", self.quantile, low=0.0, strict=True, high=1.0))
        if self.max_weight is not None:
            set_(self, "max_weight", _real("max_weight", self.max_weight, low=0.0, strict=True))
        self._check_choices()

    def _check_choices(self) -> None:
        """``rebalance``, ``fill``, ``costs`` and the window (``start`` not after ``end``)."""
        if self.rebalance is not None and self.rebalance not in REBALANCE_CHOICES:
            raise ValueError(f"{_where('rebalance')} must be one of {REBALANCE_CHOICES} or None, "
                             f"got {self.rebalance!r}")
        if self.fill not in FILLS:
            raise ValueError(f"{_where('fill')} must be one of {FILLS}, got {self.fill!r}")
        if not isinstance(self.costs, CostModel):
            raise TypeError(f"{_where('costs')} must be a vfr.backtest.CostModel, got {self.costs!r}")
        start, end = _date("start", self.start), _date("end", self.end)
        if start is not None and end is not None and start > end:
            raise ValueError(f"BacktestConfig: start {self.start!r} is after end {self.end!r}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BacktestConfig:
        """Config from the settings' ``top_n`` and costs (``commission_bps`` + ``slippage_bps``).

        Parameters
        ----------
        settings : vfr.config.Settings
        **overrides
            Fields that replace the settings' values or the defaults (e.g. ``top_n=5``,
            ``rebalance="weekly"``, ``costs=CostModel(...)``).

        Raises
        ------
        TypeError
            An override that is not a field of :class:`BacktestConfig`.
        """
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"BacktestConfig.from_settings: unknown fields {unknown}")
        base = {"top_n": settings.top_n,
                "costs": CostModel(commission_bps=settings.commission_bps, slippage_bps=settings.slippage_bps)}
        return cls(**(base | overrides))

    @property
    def cost_bps(self) -> float:
        """Proportional cost actually charged (commission + slippage), bp of traded notional."""
        return self.costs.bps

    def price_columns(self) -> list[str]:
        """Columns of the prices frame this configuration uses.

        ``symbol, date, close`` always; ``open`` for an open fill; ``volume`` for impact;
        ``close_raw`` for a per-share commission or dividends; ``dividend_amount`` for
        dividends. (Without ``close_raw`` a per-share commission is charged on the adjusted
        close: :func:`vfr.backtest.run_backtest` requires it only for dividends.)
        """
        cols = ["symbol", "date", "close"]
        cols += ["open"] if self.fill == "open" else []
        cols += ["volume"] if self.costs.impact_coef > 0 else []
        cols += ["close_raw"] if self.costs.commission_per_share > 0 or self.dividends else []
        cols += ["dividend_amount"] if self.dividends else []
        return cols

    def as_params(self) -> dict[str, Any]:
        """The settings as recorded in :attr:`vfr.backtest.BacktestResult.params` (``costs`` as
        a dict, ``cost_bps`` the proportional cost charged)."""
        return {"top_n": self.top_n, "rebalance_every": self.rebalance_every, "cost_bps": self.cost_bps,
                "execution_lag": self.execution_lag, "start": self.start, "end": self.end,
                "rebalance": self.rebalance, "quantile": self.quantile, "long_short": self.long_short,
                "max_weight": self.max_weight, "sector_neutral": self.sector_neutral,
                "min_trade": self.min_trade, "costs": asdict(self.costs), "fill": self.fill,
                "dividends": self.dividends, "capital": self.capital, "gross_exposure": self.gross_exposure}
