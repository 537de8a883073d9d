"""The one horizon vocabulary: every spelling of a horizon reads to one canonical name."""

from __future__ import annotations

import numpy as np
import pytest

from vfr.config import HORIZONS, Settings
from vfr.errors import UsageError
from vfr.metrics import Horizon, HorizonError, parse_horizon, parse_horizons


@pytest.mark.parametrize(("spelling", "expected"), [
    ("1w", Horizon("1w", 5)), (5, Horizon("1w", 5)), ("5d", Horizon("1w", 5)), (" 1W ", Horizon("1w", 5)),
    ("5", Horizon("1w", 5)), (np.int64(21), Horizon("1m", 21)), ("21d", Horizon("1m", 21)), ("1m", Horizon("1m", 21)),
    ("1d", Horizon("1d", 1)), (1, Horizon("1d", 1)),
    # not a canonical horizon: named by its days; a week is 5 and a month 21 trading days
    (10, Horizon("10d", 10)), ("2w", Horizon("10d", 10)), ("3m", Horizon("63d", 63)), ("3", Horizon("3d", 3)),
])
def test_spellings_read_to_the_canonical_horizon(spelling, expected) -> None:
    assert parse_horizon(spelling) == expected
    assert parse_horizon(expected) is expected  # a Horizon passes through


def test_canonical_names_are_those_of_config() -> None:
    for name, days in HORIZONS.items():
        assert parse_horizon(name) == Horizon(name, days)
        assert parse_horizon(days).name == name and str(parse_horizon(days)) == name


@pytest.mark.parametrize("bad", [0, -5, "0d", "-1d", "1y", "abc", "", "1.5d", 5.0, True, None, [5]])
def test_bad_horizons_are_refused_naming_the_value(bad) -> None:
    with pytest.raises(HorizonError, match="bad horizon") as info:
        parse_horizon(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UsageError)


def test_parse_horizons_keeps_order_and_reads_mappings() -> None:
    assert parse_horizons(["1m", 1, "5d"]) == [Horizon("1m", 21), Horizon("1d", 1), Horizon("1w", 5)]
    assert parse_horizons("1w") == [Horizon("1w", 5)] and parse_horizons(21) == [Horizon("1m", 21)]
    assert parse_horizons(HORIZONS) == [Horizon(n, d) for n, d in HORIZONS.items()]
    assert parse_horizons({"5d": 5}) == [Horizon("1w", 5)]  # an old-style name reads to the canonical one


def test_parse_horizons_refuses_disagreements_duplicates_and_nothing() -> None:
    with pytest.raises(HorizonError, match="'1w' is 5 trading days"):
        parse_horizons({"1w": 3})
    with pytest.raises(HorizonError, match="twice"):
        parse_horizons([5, "1w"])
    with pytest.raises(HorizonError, match="no horizon"):
        parse_horizons([])
    with pytest.raises(HorizonError, match="'2x'"):
        parse_horizons(["1d", "2x"])


def test_settings_read_other_spellings_of_a_label_horizon() -> None:
    assert Settings(horizon="5d").horizon == "1w" and Settings(horizon="5d").horizon_days == 5
    assert Settings(horizon="1m").horizon == "1m"
    with pytest.raises(ValueError, match="'2w'"):  # a horizon, but not one of the label horizons
        Settings(horizon="2w")
    with pytest.raises(ValueError, match="'3y'"):
        Settings(horizon="3y")
