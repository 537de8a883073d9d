"""Download market data from a provider into files that `vfr data ingest` reads (issue 19).

A fetch never writes the store itself: it downloads, checks the rows with the same validation
as a file given to ``vfr data ingest`` (prices: :func:`vfr.data.readers.validate_raw`;
earnings: :func:`vfr.data.fundamentals.clean_earnings`; macro: the macro readers), writes them
atomically to a dated file under ``<VFR_HOME>/downloads`` (kept: what was ingested can be
inspected and ingested again), and the caller ingests that file as any other. A failed
download therefore leaves the store as it was.

========  =========================  =============================================
what      providers                  written
========  =========================  =============================================
prices    ``alphavantage``,          ``prices-<provider>-<UTC stamp>.parquet`` (raw prices
          ``yfinance``               layout of ``prices_daily.parquet``)
earnings  ``alphavantage``, ``fmp``  ``earnings-<provider>-<stamp>.parquet`` (the
                                     ``shared/data/earnings`` layout)
macro     ``fred``                   folder ``macro-fred-<stamp>/`` with ``fred_md``,
                                     ``vix_daily`` and ``gdp_quarterly`` Parquet
ratios    ``sec``                    ``ratios-sec-<stamp>.parquet`` (ROE, leverage and
                                     margins per fiscal quarter from EDGAR XBRL company
                                     facts, usable the day after filing; the layout of
                                     :func:`vfr.data.read_ratios`)
========  =========================  =============================================

HTTP providers go through :class:`vfr.data.providers.base.JsonClient` (rate limit per provider,
retries with backoff, an expiring cache without keys). ``yfinance`` is Yahoo's unofficial
API through the ``yfinance`` library (its own session and retries); its terms allow personal use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vfr._util import atomic_write
from vfr.data.providers.base import ProviderError

#: what -> providers that can fetch it.
PROVIDERS: dict[str, tuple[str, ...]] = {"prices": ("alphavantage", "yfinance"),
                                         "earnings": ("alphavantage", "fmp"),
                                         "macro": ("fred",),
                                         "ratios": ("sec",)}


def _stamp() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` all at once (:func:`vfr._util.atomic_write`): the path holds
    either the old file or the whole new one, never a part."""
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def parse_yfinance(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw prices rows of a ``yfinance.download(..., auto_adjust=False, actions=True)`` frame.

    Parameters
    ----------
    frame : DataFrame
        Indexed by date, columns a MultiIndex (field, ticker) with fields ``Open, High, Low,
        Close, Adj Close, Volume, Dividends, Stock Splits`` (yfinance >= 0.2.51 layout; a flat
        single-ticker frame needs a ``symbol`` in ``frame.attrs``).

    Returns
    -------
    DataFrame
        ``symbol, date, open, high, low, close, adjusted_close, volume, dividend_amount,
        split_coefficient`` (``Stock Splits`` 0 = no split -> 1.0); days without a close dropped.

    Raises
    ------
    ProviderError
        A required field is missing or the frame is empty.
    """
    fields = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adjusted_close",
              "Volume": "volume", "Dividends": "dividend_amount", "Stock Splits": "split_coefficient"}
    if frame.empty:
        raise ProviderError("yfinance: no rows returned (unknown tickers, or a date range without trading days?)")
    if not isinstance(frame.columns, pd.MultiIndex):
        symbol = frame.attrs.get("symbol")
        if not symbol:
            raise ProviderError("yfinance: a single-ticker frame needs its symbol")
        frame = pd.concat({symbol: frame}, axis=1).swaplevel(0, 1, axis=1)
    missing = sorted(set(fields) - set(frame.columns.get_level_values(0)))
    if missing:
        raise ProviderError(f"yfinance: fields {missing} missing from the download")
    long = frame[list(fields)].stack(level=1, future_stack=True)
    long.index.names = ["date", "symbol"]
    out = long.rename(columns=fields).reset_index()
    out["split_coefficient"] = out["split_coefficient"].fillna(0.0).replace(0.0, 1.0)
    out["dividend_amount"] = out["dividend_amount"].fillna(0.0)
    dates = pd.to_datetime(out["date"])
    out["date"] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    out = out.dropna(subset=["close"])
    return out[["symbol", "date", *fields.values()]].sort_values(["symbol", "date"]).reset_index(drop=True)


def _yfinance_download(symbols: Sequence[str], start: str | None, end: str | None) -> pd.DataFrame:
    try:
        import yfinance as yf
    except ImportError as exc:  # pragma: no cover - yfinance comes with the core install
        raise ProviderError("yfinance is not installed: pip install yfinance") from exc
    errors: dict[str, str] = {}
    try:
        frame = yf.download(list(symbols), start=start, end=end, auto_adjust=False, actions=True,
                            group_by="column", progress=False, threads=False, multi_level_index=True)
        errors = dict(getattr(getattr(yf, "shared", None), "_ERRORS", {}) or {})
    except Exception as exc:  # noqa: BLE001 - yfinance raises many types; one line names it
        raise ProviderError(f"yfinance: download failed ({exc.__class__.__name__}: {exc})") from exc
    if frame is None or frame.empty:
        why = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:3])
        raise ProviderError(f"yfinance: nothing downloaded for {', '.join(symbols)}"
                            + (f" ({why})" if why else " (is the network reachable?)"))
    return frame


def fetch_prices(provider: str, symbols: Sequence[str], *, start: str | None = None, end: str | None = None,
                 client: dict[str, Any] | None = None,
                 download: Callable[[Sequence[str], str | None, str | None], pd.DataFrame] | None = None
                 ) -> pd.DataFrame:
    """Daily prices of ``symbols`` from ``provider``, validated as ``vfr data ingest`` does.

    Parameters
    ----------
    provider : {"alphavantage", "yfinance"}
    symbols : sequence of str
    start, end : str, optional
        ISO dates, inclusive; rows outside are dropped (Alpha Vantage always sends the full history).
    client : dict, optional
        Keyword arguments of the provider class (``api_key``, ``base_url``, ``cache_dir``,
        ``expire_after``, ``retries``, ...); HTTP providers only.
    download : callable, optional
        Replaces ``yfinance.download`` (symbols, start, end) -> frame.

    Returns
    -------
    DataFrame
        The raw prices frame (:mod:`vfr.data.readers`).

    Raises
    ------
    ProviderError
        Unknown provider, no key, network or provider failure, nothing in the range.
    DataValidationError
        The provider's rows fail the ingest checks (source names the provider).
    """
    from vfr.data.readers import RAW_COLUMNS, validate_raw

    _known("prices", provider)
    if not symbols:
        raise ProviderError("prices: no symbols given")
    if provider == "alphavantage":
        from vfr.data.providers.alphavantage import AlphaVantage

        av = AlphaVantage(**(client or {}))
        try:
            raw = pd.concat([av.daily_adjusted(s) for s in symbols], ignore_index=True)
        finally:
            av.client.close()
    else:
        frame = (download or _yfinance_download)(list(symbols), start, end)
        raw = parse_yfinance(frame)
    dates = pd.to_datetime(raw["date"])
    keep = pd.Series(True, index=raw.index)
    if start:
        keep &= dates >= pd.Timestamp(start)
    if end:
        keep &= dates <= pd.Timestamp(end)
    raw = raw[keep].reset_index(drop=True)
    if raw.empty:
        raise ProviderError(f"{provider}: no prices of {', '.join(symbols)} between {start or 'the start'} and "
                            f"{end or 'today'}")
    return validate_raw(raw[RAW_COLUMNS], f"{provider} download")


def fetch_earnings(provider: str, symbols: Sequence[str], *, client: dict[str, Any] | None = None) -> pd.DataFrame:
    """Earnings reports of ``symbols`` (canonical frame, :data:`vfr.data.fundamentals.EARNINGS_COLUMNS`).

    Raises
    ------
    ProviderError
        Unknown provider, no key, network or provider failure.
    """
    _known("earnings", provider)
    if not symbols:
        raise ProviderError("earnings: no symbols given")
    if provider == "alphavantage":
        from vfr.data.providers.alphavantage import AlphaVantage

        source: Any = AlphaVantage(**(client or {}))
    else:
        from vfr.data.providers.fmp import FMP

        source = FMP(**(client or {}))
    try:
        frames = [source.earnings(s) for s in symbols]
    finally:
        source.client.close()
    return pd.concat(frames, ignore_index=True)


def fetch_ratios(provider: str, symbols: Sequence[str], *, client: dict[str, Any] | None = None) -> pd.DataFrame:
    """Ratio rows of ``symbols`` (canonical ratios frame, :func:`vfr.data.clean_ratios`).

    Parameters
    ----------
    provider : {"sec"}
        SEC EDGAR XBRL company facts (no key; ``VFR_SEC_USER_AGENT`` must name the requester
        and an e-mail, as the SEC asks). Tickers are mapped to CIKs with SEC's
        ``company_tickers.json``.
    client : dict, optional
        Keyword arguments of :class:`vfr.data.providers.SECCompanyFacts` (``base_url``,
        ``tickers_url``, ``cache_dir``, ``expire_after``, ``retries``, ...).

    Raises
    ------
    ProviderError
        Unknown provider, no User-Agent, a ticker without a CIK, network or provider failure.
    DataValidationError
        The rows fail :func:`vfr.data.clean_ratios` (source names the provider).
    """
    from vfr.data.fundamentals import clean_ratios
    from vfr.data.providers.sec import SECCompanyFacts

    _known("ratios", provider)
    if not symbols:
        raise ProviderError("ratios: no symbols given")
    sec = SECCompanyFacts(**(client or {}))
    try:
        ciks = sec.ciks(list(symbols))
        frames = [sec.ratios(s, ciks[s]) for s in symbols]
    finally:
        sec.client.close()
    return clean_ratios(pd.concat(frames, ignore_index=True), source=f"{provider} download")


def merge_by_symbol(stored: pd.DataFrame | None, fetched: pd.DataFrame) -> pd.DataFrame:
    """A whole-table input (earnings, ratios) after a fetch: the stored rows of every symbol not
    fetched, plus the fetched rows (which replace all stored rows of their symbols). These tables
    are stored whole (``vfr data ingest-fundamentals`` replaces them), so a fetch of a few symbols
    must not drop the others."""
    if stored is None or stored.empty:
        return fetched.reset_index(drop=True)
    kept = stored[~stored["symbol"].isin(set(fetched["symbol"]))]
    return pd.concat([kept[list(fetched.columns)], fetched], ignore_index=True)


def fetch_macro(provider: str, folder: Path, *, client: dict[str, Any] | None = None) -> Path:
    """The macro series from ``provider`` written to ``folder`` in the layout ``vfr data
    ingest-fundamentals --macro`` reads (each file atomically); returns ``folder``.

    Raises
    ------
    ProviderError
        Unknown provider, no key, network or provider failure.
    """
    from vfr.data.providers.fred import Fred

    _known("macro", provider)
    fred = Fred(**(client or {}))
    try:
        data = fred.macro()
    finally:
        fred.client.close()
    write_parquet_atomic(data.fred_md, folder / "fred_md.parquet")
    if data.vix is not None:
        write_parquet_atomic(data.vix, folder / "vix_daily.parquet")
    if data.gdp is not None:
        write_parquet_atomic(data.gdp, folder / "gdp_quarterly.parquet")
    return folder


def download_path(home: Path, what: str, provider: str) -> Path:
    """Where a fetch writes: ``<home>/downloads/<what>-<provider>-<UTC stamp>[.parquet]``."""
    name = f"{what}-{provider}-{_stamp()}"
    return home / "downloads" / (name if what == "macro" else f"{name}.parquet")


def _known(what: str, provider: str) -> None:
    if provider not in PROVIDERS[what]:
        raise ProviderError(f"{what} cannot be fetched from {provider!r}; providers: {', '.join(PROVIDERS[what])}")
