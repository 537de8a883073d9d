"""News provider adapter: RSS 2.0 feeds -> the messages frame of ``vfr.features.sentiment``.

An RSS 2.0 document (https://www.rssboard.org/rss-specification) is parsed with
``feedparser``; each ``<item>`` becomes one message per symbol it mentions. Symbols come from
the item's ``<category>`` elements (``domain="ticker"`` or any category equal to a known
symbol) and from cash-tags (``$AAPL``) in the title and description. The publication time is
the item's ``<pubDate>`` (RFC 822, converted to UTC); items without one are dropped, because
their trading day cannot be assigned without look-ahead.

No network access happens here: callers pass the payload (bytes/str fetched elsewhere, or a
file's contents). The output feeds ``score_messages`` / ``daily_sentiment`` exactly like the
tweets table.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable

import pandas as pd

#: Columns of :func:`parse_rss` output.
NEWS_COLUMNS: tuple[str, ...] = ("symbol", "created_at", "text", "source", "item_id")

_CASHTAG = re.compile(r"\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)\b")
_TAGS = re.compile(r"<[^>]+>")


def parse_rss(payload: bytes | str, *, symbols: Iterable[str] | None = None,
              source: str | None = None) -> pd.DataFrame:
    """Parse an RSS 2.0 payload into a messages frame.

    Parameters
    ----------
    payload : bytes or str
        The RSS document.
    symbols : iterable of str, optional
        Known tickers (upper case). When given, only these are kept and a category equal to
        one of them counts as a ticker tag; when None, every ``domain="ticker"`` category and
        every cash-tag is kept.
    source : str, optional
        Source name stored in ``source``; default the channel ``<title>``.

    Returns
    -------
    pandas.DataFrame, shape (n_items x symbols, 5)
        ``symbol`` (str, upper case), ``created_at`` (UTC timestamp of ``pubDate``), ``text``
        (title + ". " + description with HTML tags removed), ``source`` and ``item_id``
        (``guid`` or link). Sorted by ``created_at, symbol``.

    Raises
    ------
    ValueError
        If the payload is not a well-formed feed (``feedparser`` sets ``bozo`` and finds no
        entries).
    """
    import feedparser

    feed = feedparser.parse(payload)
    if feed.bozo and not feed.entries:
        raise ValueError(f"not a valid RSS feed: {feed.get('bozo_exception')!r}")
    known = {s.upper() for s in symbols} if symbols is not None else None
    src = source or feed.feed.get("title", "rss")
    rows: list[dict[str, object]] = []
    for entry in feed.entries:
        parsed = entry.get("published_parsed")
        if parsed is None:
            continue
        created = pd.Timestamp(calendar.timegm(parsed), unit="s", tz="UTC")
        title = entry.get("title", "")
        desc = _TAGS.sub(" ", entry.get("summary", "") or "")
        text = " ".join(f"{title}. {desc}".split())
        tags: set[str] = set()
        for tag in entry.get("tags", []) or []:
            term = (tag.get("term") or "").strip().upper()
            scheme = (tag.get("scheme") or "").lower()
            if term and ("ticker" in scheme or (known is not None and term in known)):
                tags.add(term)
        tags.update(m.upper() for m in _CASHTAG.findall(f"{title} {desc}"))
        if known is not None:
            tags &= known
        item_id = entry.get("id") or entry.get("link") or title
        rows.extend({"symbol": s, "created_at": created, "text": text, "source": src,
                     "item_id": item_id} for s in sorted(tags))
    out = pd.DataFrame(rows, columns=list(NEWS_COLUMNS))
    out["created_at"] = pd.to_datetime(out["created_at"], utc=True)
    return out.sort_values(["created_at", "symbol"], kind="stable").reset_index(drop=True)
