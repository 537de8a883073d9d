"""Transaction-cost model: commissions, slippage and square-root market impact.

All costs are expressed as a *fraction of the portfolio's capital* so that the engine can
subtract them from the daily return of the entry day.

Square-root impact
------------------
The price impact of a trade of ``Q`` shares in a stock with average daily volume ``ADV``
(shares) and daily return volatility ``sigma`` is modelled as

.. math:: \\frac{\\Delta P}{P} = Y \\, \\sigma \\, \\sqrt{\\frac{Q}{ADV}}

with ``Y`` of order 1 ("square-root law": R. Grinold and R. Kahn, *Active Portfolio
Management*, 2nd ed., McGraw-Hill 2000, ch. 16; B. Toth et al., "Anomalous price impact and
the critical nature of liquidity in financial markets", *Phys. Rev. X* 1, 021006, 2011;
R. Almgren et al., "Direct estimation of equity market impact", *Risk* 18(7), 2005). The
cost of the trade is that fraction times its notional, so the impact cost grows like
``Q^{3/2}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CostModel", "impact_fraction", "trade_costs"]


@dataclass(frozen=True)
class CostModel:
    """Parameters of the cost model (all default to 0 = free trading).

    Attributes
    ----------
    commission_bps : float
        Commission in basis points of the traded notional.
    commission_per_share : float
        Commission in USD per (unadjusted, as-traded) share.
    slippage_bps : float
        Half-spread / slippage in basis points of the traded notional.
    impact_coef : float
        ``Y`` of the square-root impact model (0 switches impact off; ~1 is typical).
    adv_window : int
        Trading days (ending the day *before* the trade) used for ``ADV`` and ``sigma``.
    """

    commission_bps: float = 0.0
    commission_per_share: float = 0.0
    slippage_bps: float = 0.0
    impact_coef: float = 0.0
    adv_window: int = 20

    def __post_init__(self) -> None:
        for name in ("commission_bps", "commission_per_share", "slippage_bps", "impact_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if int(self.adv_window) < 2:
            raise ValueError("adv_window must be >= 2")

    @property
    def bps(self) -> float:
        """Proportional cost in basis points (commission + slippage)."""
        return float(self.commission_bps + self.slippage_bps)

    @classmethod
    def with_defaults(cls, *, default_commission_bps: float, default_slippage_bps: float,
                      commission_bps: float | None = None, slippage_bps: float | None = None,
                      commission_per_share: float = 0.0, impact_coef: float = 0.0) -> CostModel:
        """A cost model where each proportional cost not given keeps its default.

        Giving one cost (e.g. only the slippage) must never drop another to zero: a user who
        sets slippage expects the commission of the settings (``VFR_COMMISSION_BPS``) to stay.

        Parameters
        ----------
        default_commission_bps, default_slippage_bps : float
            Basis points used when ``commission_bps`` / ``slippage_bps`` is None.
        commission_bps, slippage_bps : float, optional
            Basis points of the traded notional.
        commission_per_share, impact_coef : float
            As the fields of the same names.

        Raises
        ------
        ValueError
            A cost is negative.
        """
        return cls(commission_bps=default_commission_bps if commission_bps is None else commission_bps,
                   slippage_bps=default_slippage_bps if slippage_bps is None else slippage_bps,
                   commission_per_share=commission_per_share, impact_coef=impact_coef)

    def describe(self) -> str:
        """The costs in words, e.g. ``10 bps per unit traded`` (+ per-share and impact terms)."""
        parts = [f"{self.bps:g} bps per unit traded"]
        if self.commission_per_share:
            parts.append(f"{self.commission_per_share:g} USD per share")
        if self.impact_coef:
            parts.append(f"square-root impact Y={self.impact_coef:g}")
        return " + ".join(parts)


def impact_fraction(trade_value: np.ndarray, price: np.ndarray, adv: np.ndarray, sigma: np.ndarray,
                    coef: float) -> np.ndarray:
    """Square-root price impact ``Y sigma sqrt(Q / ADV)`` of each trade (fraction of price).

    Parameters
    ----------
    trade_value : numpy.ndarray
        Absolute traded notional per stock, USD, shape ``(n,)``.
    price : numpy.ndarray
        Price per share in the same (adjusted) units as ``adv``, USD, shape ``(n,)``.
    adv : numpy.ndarray
        Average daily volume, shares, shape ``(n,)``.
    sigma : numpy.ndarray
        Daily return volatility (fraction), shape ``(n,)``.
    coef : float
        ``Y``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``; 0 where the trade is 0 or ``adv``/``sigma``/``price`` are unknown
        or non-positive (no liquidity information: no impact charged).
    """
    trade_value = np.abs(np.asarray(trade_value, dtype="float64"))
    ok = (trade_value > 0) & (price > 0) & (adv > 0) & np.isfinite(sigma) & np.isfinite(adv)
    out = np.zeros_like(trade_value)
    q = np.divide(trade_value, price, out=np.zeros_like(trade_value), where=ok)
    out[ok] = coef * sigma[ok] * np.sqrt(q[ok] / adv[ok])
    return out


def trade_costs(trades: np.ndarray, *, model: CostModel, capital: float, raw_price: np.ndarray,
                adj_price: np.ndarray | None = None, adv: np.ndarray | None = None,
                sigma: np.ndarray | None = None) -> float:
    r"""Cost of one rebalance as a fraction of capital.

    .. math:: c = \sum_i |\Delta w_i| \Big( \frac{bps}{10^4} + \frac{f_{sh}}{P^{raw}_i}
              + Y \sigma_i \sqrt{\frac{|\Delta w_i| K / P_i}{ADV_i}} \Big)

    with ``K`` the capital in USD and ``f_sh`` the commission per share (shares traded =
    ``|dw| K / P_raw``, so the per-share commission as a fraction of capital is
    ``f_sh |dw| / P_raw`` whatever the capital).

    Parameters
    ----------
    trades : numpy.ndarray
        Traded weights ``dw_i`` (fractions of capital, signed), shape ``(n,)``.
    model : CostModel
        Cost parameters.
    capital : float
        Portfolio value in USD before the trade.
    raw_price : numpy.ndarray
        As-traded price per share (USD), shape ``(n,)``, for the per-share commission.
    adj_price, adv, sigma : numpy.ndarray, optional
        Adjusted price, ADV (adjusted shares) and daily volatility, shape ``(n,)``; needed
        only when ``model.impact_coef > 0``.

    Returns
    -------
    float
        Cost as a fraction of capital (>= 0).
    """
    a = np.abs(np.asarray(trades, dtype="float64"))
    cost = a.sum() * model.bps / 1e4
    if model.commission_per_share > 0:
        ok = (a > 0) & (raw_price > 0)
        cost += model.commission_per_share * float(np.divide(a, raw_price, out=np.zeros_like(a), where=ok).sum())
    if model.impact_coef > 0:
        if adj_price is None or adv is None or sigma is None:
            raise ValueError("impact needs adj_price, adv and sigma")
        cost += float((a * impact_fraction(a * capital, adj_price, adv, sigma, model.impact_coef)).sum())
    return float(cost)
