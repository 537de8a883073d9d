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

__all__ = ["FILLS", "OPTIMIZED_MAX_WEIGHT", "REBALANCE_CHOICES", "WEIGHTINGS", "BacktestConfig"]

#: Calendar rebalancing choices (``None`` = every ``rebalance_every`` scored days).
REBALANCE_CHOICES = ("daily", "weekly", "monthly")
#: Fill prices: the close or the open of the fill day.
FILLS = ("close", "open")
#: Weights of the names a rebalance holds: equal, in inverse proportion to their volatility, or
#: from the cost-aware mean-variance optimiser (:mod:`vfr.backtest.optimizer`).
WEIGHTINGS = ("equal", "inverse_vol", "optimized")


#: Largest weight of a name in an optimised book built from the settings (the research book
#: ``opt-weekly``, docs/research.md, eleventh pass).
OPTIMIZED_MAX_WEIGHT = 0.05


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
    buffer_n : int, optional
        Rank buffer (turnover control, long-only top-N books): a name enters when it ranks
        in the top ``top_n`` of the eligible names; a held name is kept while it ranks at
        most ``buffer_n`` (``>= top_n``). None (default) = ``top_n``: the book is the top
        ``top_n`` at every rebalance (no buffer). See :func:`vfr.backtest.buffered_selection`.
    max_drops : int, optional
        At most this many held names (the worst ranked first) are dropped for their rank per
        rebalance (Qlib's ``n_drop``, ``>= 0``); names that became ineligible (no score or
        price) always leave and do not count. None (default) = no limit.
    max_sector_weight : float, optional
        Cap on a sector's share of the gross exposure, in ``(0, 1]`` (e.g. 0.25), per leg;
        the excess goes to the other holdings pro rata (see
        :func:`vfr.backtest.cap_sector_weights`). Needs the sector of each symbol
        (``run_backtest(..., sectors=)``).
    target_vol : float, optional
        Volatility target, annualised (e.g. 0.15 = 15 %/year, > 0): at each rebalance the
        book's gross exposure is scaled by ``target_vol`` / the trailing realised volatility
        of the book's own de-levered daily returns up to the signal date (``vol_lookback``
        days), capped at ``max_leverage`` (see :func:`vfr.backtest.vol_target_scale`).
    vol_lookback : int, default 63
        Trading days of returns in the volatility estimates (>= 2): the book's with
        ``target_vol``, each name's with ``weighting="inverse_vol"``.
    max_leverage : float, default 1.0
        Largest scale factor volatility targeting may apply (> 0; 1.0 = it only de-levers).
    weighting : {"equal", "inverse_vol"}, default "equal"
        How a leg's weight is split among its names: equally, or in inverse proportion to each
        name's standard deviation of daily returns over the ``vol_lookback`` days up to the
        signal date (naive risk parity; see :func:`vfr.backtest.inverse_vol_weights`), before
        ``max_weight`` and ``max_sector_weight``. ``"optimized"``: the cost-aware optimiser
        (:func:`vfr.backtest.optimizer.cost_aware_weights`) weighs every eligible name with
        ``cov_lookback / 2`` returns or more against the equal-weight book of those names
        (``top_n`` is not used; ``max_weight`` bounds each name); long-only, without
        ``quantile``, ``sector_neutral`` or a rank buffer.
    risk_aversion : float, default 50.0
        Optimiser: ``gamma`` of the active variance over one holding period (>= 0). 50 gives an
        ex-ante active risk near 5 %/year for an IC of 0.02 over ~500 names rebalanced weekly
        (unconstrained optimum ``omega* = IR / gamma`` with ``IR = IC sqrt(breadth)``, Grinold and
        Kahn 2000, ch. 5-6); the long-only bound takes less.
    turnover_penalty : float, default 1.0
        Optimiser: multiplier of the proportional cost (``costs.bps``) in the turnover penalty
        (>= 0; 0 = cost-blind, 1 = charge the trade's cost once against one period's alpha).
    alpha_ic : float, default 0.02
        Optimiser: the IC in ``alpha = IC x sigma x z`` (:func:`vfr.backtest.optimizer.grinold_alpha`;
        > 0). Only the ratio to ``risk_aversion`` and the cost matters.
    cov_lookback : int, default 252
        Optimiser: trading days of daily returns up to the signal date in the Ledoit-Wolf
        covariance and the volatilities of ``alpha`` (>= 20).

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
    buffer_n: int | None = None
    max_drops: int | None = None
    max_sector_weight: float | None = None
    target_vol: float | None = None
    vol_lookback: int = 63
    max_leverage: float = 1.0
    weighting: str = "equal"
    risk_aversion: float = 50.0
    turnover_penalty: float = 1.0
    alpha_ic: float = 0.02
    cov_lookback: int = 252

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
        self._check_construction()
        self._check_choices()

    def _check_construction(self) -> None:
        """Rank buffer, sector cap and volatility target (issue 14)."""
        set_ = object.__setattr__
        set_(self, "vol_lookback", _integer("vol_lookback", self.vol_lookback, 2))
        set_(self, "max_leverage", _real("max_leverage", self.max_leverage, low=0.0, strict=True))
        if self.max_sector_weight is not None:
            set_(self, "max_sector_weight",
                 _real("max_sector_weight", self.max_sector_weight, low=0.0, strict=True, high=1.0))
        if self.target_vol is not None:
            set_(self, "target_vol", _real("target_vol", self.target_vol, low=0.0, strict=True))
        if self.max_drops is not None:
            set_(self, "max_drops", _integer("max_drops", self.max_drops, 0))
        if self.buffer_n is not None:
            set_(self, "buffer_n", _integer("buffer_n", self.buffer_n, 1))
            if self.buffer_n < self.top_n:
                raise ValueError(f"{_where('buffer_n')} must be >= top_n ({self.top_n}), got {self.buffer_n}")
        set_(self, "risk_aversion", _real("risk_aversion", self.risk_aversion, low=0.0, strict=False))
        set_(self, "turnover_penalty", _real("turnover_penalty", self.turnover_penalty, low=0.0, strict=False))
        set_(self, "alpha_ic", _real("alpha_ic", self.alpha_ic, low=0.0, strict=True))
        set_(self, "cov_lookback", _integer("cov_lookback", self.cov_lookback, 20))
        if self.weighting == "optimized":
            clash = [name for name, on in (("quantile", self.quantile is not None), ("long_short", self.long_short),
                                           ("sector_neutral", self.sector_neutral), ("buffer_n", self.buffered))
                     if on]
            if clash:
                raise ValueError(f"{_where('weighting')}='optimized' weighs a long-only book of every eligible name; "
                                 f"it cannot be combined with {', '.join(clash)}")
        if self.buffered:
            clash = [name for name, on in (("quantile", self.quantile is not None), ("long_short", self.long_short),
                                           ("sector_neutral", self.sector_neutral)) if on]
            if clash:
                raise ValueError(f"{_where('buffer_n')} / {_where('max_drops')} apply to a long-only top_n book; "
                                 f"they cannot be combined with {', '.join(clash)}")

    @property
    def effective_buffer_n(self) -> int:
        """The rank a held name must stay within (``buffer_n``, or ``top_n`` when None)."""
        return self.top_n if self.buffer_n is None else self.buffer_n

    @property
    def buffered(self) -> bool:
        """Whether selection depends on the previous book (a rank buffer or a drop limit)."""
        return self.effective_buffer_n > self.top_n or self.max_drops is not None

    @property
    def needs_sectors(self) -> bool:
        """Whether a run needs the sector of each symbol (sector neutrality or a sector cap)."""
        return self.sector_neutral or self.max_sector_weight is not None

    def _check_choices(self) -> None:
        """``rebalance``, ``fill``, ``costs`` and the window (``start`` not after ``end``)."""
        if self.rebalance is not None and self.rebalance not in REBALANCE_CHOICES:
            raise ValueError(f"{_where('rebalance')} must be one of {REBALANCE_CHOICES} or None, "
                             f"got {self.rebalance!r}")
        if self.fill not in FILLS:
            raise ValueError(f"{_where('fill')} must be one of {FILLS}, got {self.fill!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"{_where('weighting')} must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not isinstance(self.costs, CostModel):
            raise TypeError(f"{_where('costs')} must be a vfr.backtest.CostModel, got {self.costs!r}")
        start, end = _date("start", self.start), _date("end", self.end)
        if start is not None and end is not None and start > end:
            raise ValueError(f"BacktestConfig: start {self.start!r} is after end {self.end!r}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BacktestConfig:
        """Config from the settings' ``top_n``, ``weighting``, ``target_vol`` and costs
        (``commission_bps`` + ``slippage_bps``). An optimised book (``weighting="optimized"``)
        holds at most :data:`OPTIMIZED_MAX_WEIGHT` of a name unless ``max_weight`` is given.
        When the settings ask for the optimiser but the overrides describe a top-N book
        (``top_n``, ``quantile``, ``long_short``, ``sector_neutral``, ``buffer_n`` or
        ``max_drops``) and name no ``weighting``, the book is the top-N one, equal weight.

        Parameters
        ----------
        settings : vfr.config.Settings
        **overrides
            Fields that replace the settings' values or the defaults (e.g. ``top_n=5``,
            ``rebalance="weekly"``, ``costs=CostModel(...)``, ``buffer_n=40``,
            ``max_sector_weight=0.25``, ``target_vol=0.15``).

        Raises
        ------
        TypeError
            An override that is not a field of :class:`BacktestConfig`.
        """
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"BacktestConfig.from_settings: unknown fields {unknown}")
        base: dict[str, Any] = {"top_n": settings.top_n, "weighting": settings.weighting,
                                "target_vol": settings.target_vol,
                                "costs": CostModel(commission_bps=settings.commission_bps,
                                                   slippage_bps=settings.slippage_bps)}
        merged = base | overrides
        asks_top_n = ("top_n" in overrides or overrides.get("quantile") is not None or bool(overrides.get("long_short"))
                      or bool(overrides.get("sector_neutral")) or overrides.get("buffer_n") is not None
                      or overrides.get("max_drops") is not None)
        if "weighting" not in overrides and merged["weighting"] == "optimized" and asks_top_n:
            merged["weighting"] = "equal"  # options of a top-N book ask for one: not the settings' optimiser
        if merged["weighting"] == "optimized" and "max_weight" not in overrides:
            merged["max_weight"] = OPTIMIZED_MAX_WEIGHT  # the optimised book the research protocol tested
        return cls(**merged)

    @property
    def book(self) -> str:
        """The book in words, for report headers: ``top 20``, ``top 20, inverse-volatility weights``
        or ``cost-aware optimiser over every eligible stock, at most 5% a name``."""
        if self.weighting == "optimized":
            cap = "" if self.max_weight is None else f", at most {self.max_weight:.0%} a name"
            return f"cost-aware optimiser over every eligible stock{cap}"
        size = f"top {self.quantile:.0%}" if self.quantile is not None else f"top {self.top_n}"
        return size + (", inverse-volatility weights" if self.weighting == "inverse_vol" else "")

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
        a dict, ``cost_bps`` the proportional cost charged, ``buffer_n`` the rank buffer in
        force: ``top_n`` when the field is None; both None for an optimised book, which uses
        neither)."""
        top_n_book = self.weighting != "optimized"
        return {"top_n": self.top_n if top_n_book else None, "rebalance_every": self.rebalance_every,
                "cost_bps": self.cost_bps,
                "execution_lag": self.execution_lag, "start": self.start, "end": self.end,
                "rebalance": self.rebalance, "quantile": self.quantile, "long_short": self.long_short,
                "max_weight": self.max_weight, "sector_neutral": self.sector_neutral,
                "min_trade": self.min_trade, "costs": asdict(self.costs), "fill": self.fill,
                "dividends": self.dividends, "capital": self.capital, "gross_exposure": self.gross_exposure,
                "buffer_n": self.effective_buffer_n if top_n_book else None, "max_drops": self.max_drops,
                "max_sector_weight": self.max_sector_weight, "target_vol": self.target_vol,
                "vol_lookback": self.vol_lookback, "max_leverage": self.max_leverage, "weighting": self.weighting,
                **({"risk_aversion": self.risk_aversion, "turnover_penalty": self.turnover_penalty,
                    "alpha_ic": self.alpha_ic, "cov_lookback": self.cov_lookback}
                   if self.weighting == "optimized" else {})}
