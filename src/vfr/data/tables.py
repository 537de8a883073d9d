"""Names of the market store's tables, defined once.

Code that reads or writes a table of :class:`vfr.data.MarketStore` imports these constants
instead of repeating the string (``from vfr.data import tables``; ``tables.FEATURES``). The
operational tables of the prediction log, monitoring and retraining live in another
database and are named in :mod:`vfr.opsdb`, not here.

Table names are letters, digits and underscore, lower case (the store's rule).
"""

from __future__ import annotations

__all__ = ["BACKTEST_EQUITY", "EARNINGS", "FEATURES", "MACRO", "MACRO_FRED_MD", "MACRO_GDP", "MACRO_VIX",
           "EARNINGS_PREDICTIONS_OOS", "MEMBERSHIP", "PREDICTIONS_OOS", "PRICES", "RATIOS", "SECURITIES"]

#: The canonical prices frame, one row per (symbol, date) (``vfr data ingest``).
PRICES = "prices"
#: Symbol, name and sector of each security (a constituents csv).
SECURITIES = "securities"
#: Point-in-time universe intervals ``symbol, start_date, end_date``.
MEMBERSHIP = "universe_membership"
#: Earnings reports (``vfr data ingest-fundamentals --earnings``).
EARNINGS = "earnings"
#: Provider ratios per fiscal period (``vfr data ingest-fundamentals --ratios``; ROE, margins, ...).
RATIOS = "ratios"
#: Yearly walk-forward probabilities of the early-signal model (``vfr earnings train``).
EARNINGS_PREDICTIONS_OOS = "earnings_predictions_oos"
#: FRED-MD monthly macro series, daily VIX and quarterly GDP (``--macro``).
MACRO_FRED_MD = "macro_fred_md"
MACRO_VIX = "macro_vix"
MACRO_GDP = "macro_gdp"
#: The macro tables by the :class:`vfr.data.MacroData` field they hold.
MACRO = {"fred_md": MACRO_FRED_MD, "vix": MACRO_VIX, "gdp": MACRO_GDP}
#: Every factor group of every member row (``vfr features build``).
FEATURES = "features"
#: Walk-forward out-of-sample probabilities of the registered model (``vfr train``).
PREDICTIONS_OOS = "predictions_oos"
#: Net equity curves of the latest ``vfr backtest`` (``date``, ``strategy``, ``equity``).
BACKTEST_EQUITY = "backtest_equity"
