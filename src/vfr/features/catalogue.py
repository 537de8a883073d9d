"""Registry of the fundamental, macro, alternative and interaction features (issue 3).

These are columns of :func:`vfr.features.build_all_features`, not of ``build_features``
(whose layout, :data:`vfr.features.FEATURES`, is unchanged). :data:`ALL_FEATURES` lists every
registered feature of the default set, technical ones included;
``benchmarks/feature_catalogue.py`` renders it as ``docs/features.md``. Features built only on
an optional input are registered apart: :data:`LEVEL_RATIO_FEATURES_DEFS` (P/E and kin, only
with a split table, see :mod:`vfr.features.fundamental`) and :data:`RATIO_FEATURES_DEFS`
(provider balance-sheet ratios).
"""

from __future__ import annotations

from vfr.features.definitions import FEATURES, SENTIMENT_FEATURES, FeatureDef
from vfr.features.interactions import CANDIDATES, INTERACTIONS

_EARN = "earnings file / provider EARNINGS; usable from the day after reported_date"
_EARN_PX = _EARN + "; price: as-traded close of t"
_FRED = "FRED-MD month m usable from the first day of month m+2 (published ~1 month after m)"
_VIX = "VIX close, known at the close of t"
_GDP = "GDP quarter usable 30 days after the quarter ends"


def _f(name: str, window: int, description: str, source: str, lag: str = _EARN) -> FeatureDef:
    return FeatureDef(name, "fundamental", description, window, source, lag=lag)


def _m(name: str, window: int, description: str, source: str, lag: str,
       ranked: bool = False) -> FeatureDef:
    return FeatureDef(name, "macro", description, window, source, lag=lag, ranked=ranked)


def _a(name: str, window: int, description: str, source: str, lag: str = "",
       ranked: bool = True) -> FeatureDef:
    return FeatureDef(name, "alternative", description, window, source, lag=lag, ranked=ranked)


_SUE_SRC = ("seasonal random walk: Foster, Olsen & Shevlin, Accounting Review (1984); Bernard & "
            "Thomas, J. Accounting Research (1989), J. Accounting & Economics (1990)")

_EY_REL_SRC = ("time-series value, a stock's value measure against its own history (Asness, "
               "Moskowitz & Pedersen, J. Finance 2013, 'Value and momentum everywhere'; Basu 1977 "
               "for E/P); VFR's own z-score form; vfr.features.fundamental.own_history_z")

#: Fundamental features (vfr.features.fundamental), built by default: none depends on a
#: per-stock constant scale of EPS. Window: nominal trading days.
FUNDAMENTAL_FEATURES: tuple[FeatureDef, ...] = (
    _f("ey_rel_3y", 756, "(EY_t - mean(EY)) / std(EY) (ddof=1) over the symbol's trailing 756 "
       "price rows incl. t (>= 252 known), EY = TTM EPS / as-traded close restated in the "
       "shares of the last price date; dimensionless, invariant to a constant factor of the "
       "stock's EPS; NaN when EY_t is unknown", _EY_REL_SRC, _EARN_PX),
    _f("eps_growth_yoy", 504, "(eps_ttm - eps_ttm 4 quarters earlier) / |that| (fraction, "
       "clipped to [-10, 10]; NaN only when that is exactly 0: no USD threshold, so invariant "
       "to the EPS share basis)", "trailing-12-month EPS growth (year over year)"),
    _f("sue", 756, "SUE = (EPS_q - EPS_{q-4}) / std of the 8 prior such differences (ddof=1, "
       ">= 4 known; NaN when the std is 0); dimensionless", _SUE_SRC),
    _f("surprise_pct_last", 63, "last report's (reported - estimated) / |estimated| x 100 "
       "(percent)", "Alpha Vantage EARNINGS surprisePercentage; Livnat & Mendenhall (2006)"),
    _f("surprise_pct_mean_4q", 252, "mean surprise_pct of the last 4 reports (>= 3 known), "
       "percent", "Livnat & Mendenhall, J. Accounting Research (2006)"),
    _f("surprise_beat_share_8q", 504, "share of the last 8 reports beating the estimate "
       "(surprise > 0, >= 4 known), 0..1 (surprise consistency)",
       "Kasznik & McNichols, J. Accounting Research (2002)"),
    _f("dividend_yield_ttm", 252, "cash dividends with ex-date in the last 365 calendar days / "
       "close, both as traded (fraction per year); NaN in a symbol's first 365 days",
       "Litzenberger & Ramaswamy (1979); prices file dividend_amount",
       "ex-dividend dates and closes up to t (no lag)"),
)

#: Level ratios (vfr.features.fundamental.LEVEL_RATIO_COLUMNS): built only when a split table
#: ``eps_split_factors`` is given, because their values depend on each stock's EPS share basis
#: (not in :data:`ALL_FEATURES`, the default set).
LEVEL_RATIO_FEATURES_DEFS: tuple[FeatureDef, ...] = (
    _f("eps_ttm", 252, "sum of the last 4 quarterly reported EPS x the symbol's split-table "
       "factor: USD per share of the last price date; NaN if the 4 quarters span over 300 days",
       "vfr.features.fundamental.quarterly_earnings_features"),
    _f("pe_ttm", 252, "price / eps_ttm with price = as-traded close restated in the shares of "
       "the last price date (close_raw / later splits), one share basis with eps_ttm; NaN when "
       "eps_ttm <= 0 (times)",
       "Basu, J. Finance (1977); vfr.features.fundamental.split_basis_price", _EARN_PX),
    _f("earnings_yield", 252, "eps_ttm / price on one share basis (fraction per year; defined "
       "for losses)", "Basu (1977); Fama & French (1992)", _EARN_PX),
)

#: Provider balance-sheet ratios (only when a provider supplies them; never zero-filled).
RATIO_FEATURES_DEFS: tuple[FeatureDef, ...] = (
    _f("roe", 252, "return on equity, TTM net income / equity (fraction)",
       "provider ratio (FMP ratios returnOnEquity, Alpha Vantage OVERVIEW ReturnOnEquityTTM, "
       "SEC company facts)", "provider filing date (10-Q/10-K filed) + 1 day"),
    _f("debt_to_equity", 252, "total debt / shareholders' equity (times)",
       "provider ratio (FMP debtEquityRatio, SEC company facts)",
       "provider filing date (10-Q/10-K filed) + 1 day"),
    _f("gross_margin", 252, "gross profit / revenue (fraction)", "provider ratio (FMP "
       "grossProfitMargin, SEC company facts)", "provider filing date + 1 day"),
    _f("operating_margin", 252, "operating income / revenue (fraction)", "provider ratio (FMP "
       "operatingProfitMargin, Alpha Vantage OperatingMarginTTM)", "provider filing date + 1 day"),
    _f("net_margin", 252, "net income / revenue (fraction)", "provider ratio (FMP "
       "netProfitMargin, Alpha Vantage ProfitMargin, SEC company facts)",
       "provider filing date + 1 day"),
)

_MS = "vfr.features.macro.fred_monthly_features; FRED-MD (McCracken & Ng, JBES 2016)"
#: Macro features (vfr.features.macro): market-wide (not ranked) then stock-level (ranked).
MACRO_FEATURES: tuple[FeatureDef, ...] = (
    _m("fedfunds", 21, "effective federal funds rate, monthly average (percent per year)",
       _MS + " FEDFUNDS", _FRED),
    _m("fedfunds_chg_3m", 63, "FEDFUNDS_m - FEDFUNDS_{m-3} (percentage points)",
       _MS + " FEDFUNDS", _FRED),
    _m("unrate_chg_3m", 63, "UNRATE_m - UNRATE_{m-3} (percentage points)", _MS + " UNRATE",
       _FRED),
    _m("cpi_yoy", 252, "CPIAUCSL_m / CPIAUCSL_{m-12} - 1 (fraction)", _MS + " CPIAUCSL", _FRED),
    _m("gs10", 21, "10-year Treasury yield, monthly average (percent)", _MS + " GS10", _FRED),
    _m("gs10_chg_3m", 63, "GS10_m - GS10_{m-3} (percentage points)", _MS + " GS10", _FRED),
    _m("term_spread", 21, "GS10 - TB3MS (percentage points)", _MS + "; Estrella & Mishkin "
       "(1998)", _FRED),
    _m("credit_spread", 21, "BAA - AAA Moody's seasoned yields (percentage points)",
       _MS + "; Fama & French (1989)", _FRED),
    _m("usd_chg_3m", 63, "TWEXAFEGSMTHx_m / TWEXAFEGSMTHx_{m-3} - 1, trade-weighted dollar "
       "(fraction)", _MS + " TWEXAFEGSMTHx", _FRED),
    _m("vix", 1, "CBOE VIX close (index points)", "vfr.features.macro.vix_features; CBOE", _VIX),
    _m("vix_chg_21d", 21, "VIX_t - VIX_{t-21 VIX days} (points, about 30 calendar days)",
       "vfr.features.macro.vix_features", _VIX),
    _m("vix_pct_252d", 252, "share of the last 252 VIX closes <= VIX_t (0..1)",
       "vfr.features.macro.vix_features", _VIX),
    _m("gdp_growth_yoy", 252, "real GDP (chained 2017 USD) / same quarter a year earlier - 1 "
       "(fraction)", "vfr.features.macro.gdp_features; BEA via datasets/gdp-us", _GDP),
    _m("beta_mkt_252d", 252, "rolling beta of daily returns on the equal-weighted universe "
       "return over 252 days (>= 126), dimensionless", "CAPM beta (Sharpe 1964); OLS slope",
       "prices up to t", ranked=True),
    _m("rate_beta_36m", 756, "rolling 36-month (>= 24) OLS slope of monthly returns on monthly "
       "GS10 changes (fraction per percentage point)", "rate sensitivity (Sweeney & Warga, J. "
       "Finance 1986)", _FRED, ranked=True),
    _m("beta_regime_tilt", 252, "beta_mkt_252d if vix_pct_252d < 0.8 else -beta_mkt_252d "
       "(higher = better fit to the regime)", "Frazzini & Pedersen, JFE (2014): low beta in "
       "stress", _VIX, ranked=True),
    _m("rate_regime_tilt", 756, "rate_beta_36m x sign(gs10_chg_3m)", "vfr.features.macro",
       _FRED, ranked=True),
)

_CAL = ("approximation in the development set: the next report's reported_date stands in for "
        "its scheduled date (announced in advance)")
#: Alternative features (vfr.features.alternative).
ALTERNATIVE_FEATURES: tuple[FeatureDef, ...] = (
    _a("days_to_quarter_end", 1, "calendar days to the calendar quarter's last day (0..91)",
       "Lakonishok, Shleifer, Thaler & Vishny (1991) window dressing", ranked=False),
    _a("is_quarter_end_window", 1, "1.0 in the last 7 calendar days of a quarter, else 0.0",
       "window dressing (Lakonishok et al. 1991)", ranked=False),
    _a("is_january", 1, "1.0 in January, else 0.0", "Rozeff & Kinney (1976); Keim (1983)",
       ranked=False),
    _a("days_to_next_earnings", 1, "calendar days to the next scheduled report (0 on the day; "
       "NaN beyond 120)", "Frazzini & Lamont (2007) earnings announcement premium", _CAL),
    _a("days_since_last_earnings", 1, "calendar days since the last usable report's "
       "reported_date (NaN beyond 200)", "Bernard & Thomas (1989) drift decay", _EARN),
    _a("sector_rel_20d", 20, "20-day return - equal-weighted sector mean 20-day return "
       "(fraction; GICS sectors of constituents.csv, >= 3 members)",
       "Moskowitz & Grinblatt, J. Finance (1999) industry momentum"),
    _a("sector_rel_60d", 60, "60-day return - equal-weighted sector mean 60-day return "
       "(fraction)", "Moskowitz & Grinblatt (1999)"),
)

#: Interaction features (vfr.features.interactions), the kept ones.
INTERACTION_FEATURES: tuple[FeatureDef, ...] = tuple(
    FeatureDef(name, "interaction",
               f"4 (rank({CANDIDATES[name][0]}) - 0.5)(rank({CANDIDATES[name][1]}) - 0.5), "
               "[-1, 1]", 1, CANDIDATES[name][2], lag="the later of its inputs' lags",
               ranked=True)
    for name in INTERACTIONS)

#: Market-derived sentiment (vfr.features.sentiment.market_sentiment): built for every stock;
#: the text-sentiment features need a message feed and are built separately.
MARKET_SENTIMENT_FEATURES: tuple[FeatureDef, ...] = tuple(f for f in SENTIMENT_FEATURES
                                                          if f.name.startswith("msent_"))

#: Every feature of build_all_features (technical first), in column order.
ALL_FEATURES: tuple[FeatureDef, ...] = (FEATURES + FUNDAMENTAL_FEATURES + MACRO_FEATURES
                                        + ALTERNATIVE_FEATURES + MARKET_SENTIMENT_FEATURES
                                        + INTERACTION_FEATURES)


def alpha158_feature_defs() -> tuple[FeatureDef, ...]:
    """Definitions of Qlib's Alpha158 columns (:mod:`vfr.features.alpha158`; opt-in group
    ``alpha158``, not in :data:`ALL_FEATURES`; not ranked: built without ``_rank`` columns).

    ``VWAP0`` is included (built only from a ``vwap`` column). Windows are the operator's
    look-back in rows (1 for the k-bar and price ratios).
    """
    import re

    from vfr.features.alpha158 import KBAR, alpha158_names

    price = ("OPEN0", "HIGH0", "LOW0", "VWAP0")
    out = []
    for name in alpha158_names(vwap=True):
        digits = re.search(r"(\d+)$", name)
        window = int(digits.group(1)) if digits and name not in KBAR and name not in price else 1
        kind = "k-bar shape of the day" if name in KBAR else (
            "price / close of the day" if name in price else f"rolling {window}-day operator")
        out.append(FeatureDef(name=name, group="alpha158", window=max(window, 1),
                              description=f"Qlib Alpha158 {name}: {kind} (prices / close, volumes / volume; "
                                          "NaN until the window is full)",
                              source="Qlib Alpha158DL.get_feature_config (microsoft/qlib, "
                                     "qlib/contrib/data/loader.py); vfr.features.alpha158",
                              ranked=False))
    return tuple(out)
