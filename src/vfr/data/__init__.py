"""Market data: readers (Parquet / AlphaVantage csv folder / Yahoo csv) -> ``adjust_prices``
-> :class:`MarketStore` (DuckDB or PostgreSQL).

Frames follow the canonical *raw prices* and *prices* layouts of ``docs/architecture.md``.
"""

from vfr.data.adjust import PRICES_COLUMNS, adjust_prices
from vfr.data.ingest import IngestReport, ingest
from vfr.data.readers import (
    RAW_COLUMNS,
    read_alphavantage_folder,
    read_prices,
    read_prices_parquet,
    read_universe,
    read_yahoo_csv,
)
from vfr.data.store import MarketStore

__all__ = [
    "PRICES_COLUMNS",
    "RAW_COLUMNS",
    "IngestReport",
    "MarketStore",
    "adjust_prices",
    "ingest",
    "read_alphavantage_folder",
    "read_prices",
    "read_prices_parquet",
    "read_universe",
    "read_yahoo_csv",
]

# earnings and macro tables (issue 3)
from vfr.data.fundamentals import (
    MacroData,
    clean_earnings,
    clean_ratios,
    read_earnings,
    read_fred_md,
    read_gdp,
    read_macro,
    read_ratios,
    read_vix,
)

__all__ += ["MacroData", "clean_earnings", "clean_ratios", "read_earnings", "read_fred_md", "read_gdp",
            "read_macro", "read_ratios", "read_vix"]

# point-in-time universe (issue 12)
from vfr.data.universe import (  # noqa: E402
    Membership,
    clean_membership,
    membership_mask,
    sp500_membership,
)

__all__ += ["Membership", "clean_membership", "membership_mask", "sp500_membership"]
