"""Sentiment: text scoring, trading-day assignment (after-close rule), daily aggregates,
market-derived proxies, the RSS adapter, and a run on the real StockNet tweets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, require_shared
from vfr.data.providers.news import parse_rss
from vfr.features import SENTIMENT_FEATURES, feature_names
from vfr.features.sentiment import (
    DAILY_COLUMNS,
    MARKET_COLUMNS,
    SentimentScorer,
    assign_trading_day,
    daily_sentiment,
    market_sentiment,
    score_messages,
)

TWEETS = SHARED_DATA / "social" / "stocknet_tweets.parquet"
# NYSE trading days of March and June 2014 (no holidays in these weeks)
CAL = pd.bdate_range("2014-03-03", "2014-06-30")


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    return SentimentScorer()


def test_registry_has_sentiment_group_without_touching_technical():
    names = [f.name for f in SENTIMENT_FEATURES]
    assert set(DAILY_COLUMNS) | set(MARKET_COLUMNS) == set(names)
    assert all(f.group == "sentiment" for f in SENTIMENT_FEATURES)
    assert not set(names) & set(feature_names())  # not columns of build_features


def test_scorer_polarity(scorer, tmp_path):
    out = scorer.score(["strong growth, record profit and great gains",
                        "huge loss, fraud lawsuit and bankruptcy fears", "", None])
    assert list(out.columns) == ["lm_polarity", "vader_compound", "score"]
    assert (out.loc[0, ["lm_polarity", "vader_compound", "score"]] > 0).all()
    assert (out.loc[1, ["lm_polarity", "vader_compound", "score"]] < 0).all()
    assert out.loc[2, "score"] == 0 and out.loc[3, "score"] == 0
    assert out[["lm_polarity", "vader_compound"]].abs().le(1).all().all()
    # transformer only when weights are on disk: an empty folder is skipped with a reason
    s = SentimentScorer(methods=("vader",), transformer_path=tmp_path)
    assert s.columns == ["vader_compound"] and "no model weights" in s.skipped["transformer"]
    with pytest.raises(ValueError):
        SentimentScorer(methods=("astrology",))


@pytest.mark.parametrize(("utc", "expected"), [
    ("2014-03-07 20:59:59", "2014-03-07"),  # Fri 15:59:59 EST: before the close
    ("2014-03-07 21:00:00", "2014-03-10"),  # Fri 16:00 EST: at the close -> next trading day
    ("2014-03-07 23:30:00", "2014-03-10"),  # Fri evening -> Monday
    ("2014-03-08 15:00:00", "2014-03-10"),  # Saturday -> Monday
    ("2014-06-02 19:59:00", "2014-06-02"),  # Mon 15:59 EDT (daylight saving)
    ("2014-06-02 20:00:00", "2014-06-03"),  # Mon 16:00 EDT -> Tuesday
    ("2014-06-03 03:00:00", "2014-06-02"),  # 23:00 EDT on Monday -> still Monday's local date
    ("2014-06-30 20:30:00", None),          # after the last calendar day -> unknown
])
def test_tweet_after_close_counts_for_next_trading_day(utc, expected):
    s = pd.Series(pd.to_datetime([utc]).tz_localize("UTC"))
    got = assign_trading_day(s, CAL).iloc[0]
    if expected is None:
        assert pd.isna(got)
    else:
        # 2014-06-03 03:00 UTC is 23:00 on June 2 in New York: after the close -> June 3
        exp = pd.Timestamp("2014-06-03") if utc == "2014-06-03 03:00:00" else pd.Timestamp(expected)
        assert got == exp


def test_holiday_in_calendar_is_skipped():
    cal = CAL.drop(pd.Timestamp("2014-05-26"))  # Memorial Day
    s = pd.Series(pd.to_datetime(["2014-05-23 20:30", "2014-05-26 14:00"]).tz_localize("UTC"))
    assert list(assign_trading_day(s, cal)) == [pd.Timestamp("2014-05-27")] * 2


def _messages():
    rows = []
    for day in pd.bdate_range("2014-03-03", "2014-04-30"):
        n = 3 if day.day % 2 else 1
        for i in range(n):
            rows.append(("AAA", day + pd.Timedelta(hours=15, minutes=i), "great profit"))
    rows.append(("AAA", pd.Timestamp("2014-04-01 22:00"), "terrible loss and fraud"))  # after close
    return pd.DataFrame(rows, columns=["symbol", "created_at", "text"])


def test_daily_aggregates_and_after_close(scorer):
    scored = score_messages(_messages(), CAL, scorer)
    daily = daily_sentiment(scored, CAL)
    assert list(daily.columns) == ["symbol", "date", *DAILY_COLUMNS]
    d = daily.set_index("date")
    # the negative after-close message of April 1 is counted on April 2, not April 1
    assert d.loc["2014-04-01", "sent_mean"] > 0
    assert d.loc["2014-04-02", "sent_mean"] < d.loc["2014-03-31", "sent_mean"]
    assert d.loc["2014-04-02", "sent_volume"] == 1 + 1  # April 2 (even) has 1 own message + 1
    assert d["sent_abnormal_volume"].iloc[:20].isna().all()
    assert d["sent_abnormal_volume"].iloc[20:].notna().all()
    # abnormal volume = log1p(n_t) - mean(log1p(n) over the 20 previous days)
    n = d["sent_volume"].to_numpy()
    lv = np.log1p(n)
    assert d["sent_abnormal_volume"].iloc[25] == pytest.approx(lv[25] - lv[5:25].mean())
    # 3-day momentum: message-weighted mean over t-2..t minus the same 3 days earlier
    s = d["sent_mean"].to_numpy() * n

    def s3(t: int) -> float:
        return s[t - 2:t + 1].sum() / n[t - 2:t + 1].sum()

    assert d["sent_momentum_3d"].iloc[25] == pytest.approx(s3(25) - s3(22))


def test_daily_aggregates_have_no_lookahead(scorer):
    msgs = _messages()
    cut = pd.Timestamp("2014-03-20")
    base = daily_sentiment(score_messages(msgs, CAL, scorer), CAL)
    later = msgs["created_at"] >= cut + pd.Timedelta(hours=20)  # after the close of the cut
    changed = msgs.copy()
    changed.loc[later, "text"] = "fraud loss lawsuit bankruptcy"
    extra = pd.DataFrame({"symbol": "AAA", "created_at": [cut + pd.Timedelta(hours=21)] * 50,
                          "text": "terrible"})
    alt = daily_sentiment(score_messages(pd.concat([changed, extra]), CAL, scorer), CAL)
    a = base[base["date"] <= cut].reset_index(drop=True)
    b = alt[alt["date"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not base[base["date"] > cut].reset_index(drop=True).equals(
        alt[alt["date"] > cut].reset_index(drop=True))


def test_market_sentiment_uses_reports_only_after_reported_date():
    dates = pd.bdate_range("2015-01-01", periods=300)
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
    prices = pd.DataFrame({"symbol": "AAA", "date": dates, "close": close,
                           "volume": rng.integers(1_000, 2_000, len(dates)).astype(float)})
    rep_day = dates[100]
    earnings = pd.DataFrame({"symbol": ["AAA", "AAA"],
                             "reported_date": [dates[40], rep_day],
                             "surprise_pct": [5.0, 42.0]})
    vix = pd.DataFrame({"date": dates, "close": 15 + rng.normal(0, 1, len(dates))})
    out = market_sentiment(prices, earnings=earnings, vix=vix).set_index("date")
    assert list(out.columns) == ["symbol", *MARKET_COLUMNS]
    assert np.isnan(out.loc[dates[40], "msent_earnings_surprise"])
    assert out.loc[dates[41], "msent_earnings_surprise"] == 5.0
    assert out.loc[rep_day, "msent_earnings_surprise"] == 5.0  # not yet on its reported day
    assert out.loc[dates[101], "msent_earnings_surprise"] == 42.0
    assert out.loc[dates[10], "msent_reversal_5d"] == pytest.approx(-(close[10] / close[5] - 1))
    assert out["msent_vix_regime"].iloc[:126].isna().all()  # 126 earlier days needed
    assert out["msent_vix_regime"].iloc[126:].notna().all()


#: A documented RSS 2.0 payload (https://www.rssboard.org/rss-specification): channel with
#: title/link/description; items with title, link, description, pubDate (RFC 822), guid and
#: category elements (domain "ticker" marks a symbol).
RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Example Market Wire</title>
    <link>https://news.example.com/</link>
    <description>Company news</description>
    <item>
      <title>Apple beats estimates, record profit on strong iPhone sales</title>
      <link>https://news.example.com/a1</link>
      <description>&lt;p&gt;Shares of $AAPL rose after the report.&lt;/p&gt;</description>
      <pubDate>Tue, 28 Oct 2014 20:35:00 GMT</pubDate>
      <guid>a1</guid>
      <category domain="ticker">AAPL</category>
    </item>
    <item>
      <title>Exxon faces lawsuit over losses; analysts warn of weak quarter</title>
      <link>https://news.example.com/x1</link>
      <description>XOM and CVX slide.</description>
      <pubDate>Tue, 28 Oct 2014 14:00:00 -0400</pubDate>
      <guid>x1</guid>
      <category domain="ticker">XOM</category>
      <category>CVX</category>
    </item>
    <item>
      <title>Undated item is dropped</title>
      <guid>u1</guid>
      <category domain="ticker">MSFT</category>
    </item>
  </channel>
</rss>"""


def test_rss_adapter_feeds_the_same_table(scorer):
    news = parse_rss(RSS, symbols=["AAPL", "XOM", "CVX", "MSFT"])
    assert list(news.columns) == ["symbol", "created_at", "text", "source", "item_id"]
    assert sorted(news["symbol"]) == ["AAPL", "CVX", "XOM"]
    assert (news["source"] == "Example Market Wire").all()
    assert str(news["created_at"].dt.tz) == "UTC"
    cal = pd.bdate_range("2014-10-01", "2014-11-28")
    scored = score_messages(news, cal, scorer).set_index("symbol")
    assert scored.loc["AAPL", "date"] == pd.Timestamp("2014-10-29")  # 16:35 EDT: after close
    assert scored.loc["XOM", "date"] == pd.Timestamp("2014-10-28")   # 14:00 EDT
    assert scored.loc["AAPL", "score"] > 0 > scored.loc["XOM", "score"]
    assert "<p>" not in scored.loc["AAPL", "text"]
    daily = daily_sentiment(scored.reset_index(), cal)
    assert set(daily["symbol"]) == {"AAPL", "CVX", "XOM"}
    with pytest.raises(ValueError):
        parse_rss(b"this is not xml <<<")


def test_real_tweets_after_close_and_scores():
    require_shared(TWEETS)
    tw = pd.read_parquet(TWEETS, filters=[("symbol", "in", ["AAPL", "XOM", "JPM"])])
    tw = tw[(tw["created_at"] >= "2014-06-01") & (tw["created_at"] < "2014-09-01")]
    cal = pd.bdate_range("2014-05-01", "2014-09-30").drop(
        pd.DatetimeIndex(["2014-05-26", "2014-07-04", "2014-09-01"]))
    scored = score_messages(tw, cal)
    local = scored["created_at"].dt.tz_convert("America/New_York")
    after = local.dt.hour >= 16
    assert after.any() and (~after).any()
    local_day = local.dt.tz_localize(None).dt.normalize()
    assert (scored.loc[after, "date"] > local_day[after]).all()
    assert (scored.loc[~after, "date"] >= local_day[~after]).all()
    # the two lexicons agree in sign more often than not on real tweets
    both = scored[(scored["lm_polarity"] != 0) & (scored["vader_compound"] != 0)]
    assert (np.sign(both["lm_polarity"]) == np.sign(both["vader_compound"])).mean() > 0.6
    daily = daily_sentiment(scored, cal)
    assert daily.groupby("symbol")["sent_volume"].sum().sum() == len(scored)


@pytest.mark.slow
def test_real_tweet_signal_figures():
    """Reproduces the figures of docs/early_signal.md (54 S&P symbols, 2014-2015; ~40 s)."""
    require_shared(TWEETS)
    from tests.conftest import SP500_PRICES
    from vfr.data import adjust_prices
    from vfr.features.sentiment import sentiment_signal

    require_shared(SP500_PRICES)
    tw = pd.read_parquet(TWEETS)
    px = pd.read_parquet(SP500_PRICES, filters=[("date", ">=", pd.Timestamp("2013-10-01")),
                                                ("date", "<=", pd.Timestamp("2016-02-15"))])
    syms = sorted(set(tw["symbol"]) & set(px["symbol"]))
    assert len(syms) == 54
    prices = adjust_prices(px[px["symbol"].isin(syms)].reset_index(drop=True))
    cal = pd.DatetimeIndex(np.sort(prices["date"].unique()))
    daily = daily_sentiment(score_messages(tw[tw["symbol"].isin(syms)], cal), cal)
    daily = daily[(daily["date"] >= "2014-01-01") & (daily["date"] <= "2015-12-31")]
    assert daily["sent_volume"].sum() > 90_000
    res = sentiment_signal(daily, prices, min_names=10).set_index(["feature", "horizon"])
    assert res.loc[("sent_mean", "1d"), "n_dates"] > 400
    # no signal: every mean rank IC is small (the measured ones are within +-0.011)
    assert res["mean_rank_ic"].abs().max() < 0.03
