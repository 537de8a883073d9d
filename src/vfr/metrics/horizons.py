"""The one horizon vocabulary of VFR: names and trading-day counts of label / evaluation windows.

A *horizon* is a number of trading days ``h``; the window of date ``t`` is ``(t, t+h]``. Its
canonical name is the one of :data:`HORIZONS` (re-exported by :mod:`vfr.config`) when ``h`` is
one of those (``1d`` = 1, ``1w`` = 5, ``1m`` = 21 trading days) and ``"<h>d"`` otherwise, so
``"5d"``, ``5`` and ``"1w"`` all mean the same horizon and are all named ``"1w"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral

from vfr.errors import UsageError

#: Label horizons in trading days, by canonical name. ``1w`` (5 trading days) is the default.
HORIZONS: dict[str, int] = {"1d": 1, "1w": 5, "1m": 21}

__all__ = ["HORIZONS", "Horizon", "HorizonError", "HorizonLike", "parse_horizon", "parse_horizons"]

#: Trading days per unit of a ``"<n><unit>"`` horizon string, from :data:`HORIZONS`
#: (a week is 5 trading days, a month 21).
_UNIT_DAYS: dict[str, int] = {"d": HORIZONS["1d"], "w": HORIZONS["1w"], "m": HORIZONS["1m"]}
_PATTERN = re.compile(r"^(\d+)([dwm]?)$")
#: Canonical name of each day count of :data:`HORIZONS`.
_NAME_OF_DAYS: dict[int, str] = {days: name for name, days in HORIZONS.items()}


class HorizonError(UsageError):
    """A horizon is not a positive whole number of trading days (``ValueError`` subclass)."""


@dataclass(frozen=True)
class Horizon:
    """A label / evaluation horizon.

    Attributes
    ----------
    name : str
        Canonical name: the :data:`HORIZONS` name of ``days`` when there is one
        (``"1d"``, ``"1w"``, ``"1m"``), else ``"<days>d"``. Used in column names
        (``fwd_ret_<name>``).
    days : int
        Trading days ``h`` >= 1; the window of date ``t`` is ``(t, t+h]``.
    """

    name: str
    days: int

    def __str__(self) -> str:
        return self.name


#: What :func:`parse_horizon` accepts.
HorizonLike = Horizon | str | int


def parse_horizon(h: HorizonLike) -> Horizon:
    """Read a horizon written in any of VFR's accepted spellings.

    Parameters
    ----------
    h : Horizon, str or int
        - an int (or numpy integer) ``n`` >= 1: ``n`` trading days;
        - a name of :data:`HORIZONS` (``"1d"``, ``"1w"``, ``"1m"``);
        - ``"<n>d"``, ``"<n>w"`` or ``"<n>m"``: ``n`` days, weeks (5 trading days) or months
          (21 trading days); a bare ``"<n>"`` is ``n`` days. Case and surrounding spaces are
          ignored;
        - a :class:`Horizon` (returned as is).

    Returns
    -------
    Horizon
        With the canonical name (``parse_horizon("5d") == parse_horizon(5) ==
        Horizon("1w", 5)``; ``parse_horizon("2w") == Horizon("10d", 10)``).

    Raises
    ------
    HorizonError
        (a ``ValueError``) naming the bad value, for anything else: zero or negative days,
        floats, booleans, unknown units.
    """
    if isinstance(h, Horizon):
        return h
    days: int | None = None
    if isinstance(h, Integral) and not isinstance(h, bool):
        days = int(h)
    elif isinstance(h, str):
        match = _PATTERN.match(h.strip().lower())
        if match:
            days = int(match.group(1)) * _UNIT_DAYS[match.group(2) or "d"]
    if days is None or days < 1:
        raise HorizonError(
            f"bad horizon {h!r}: expected a positive number of trading days (int), one of "
            f"{sorted(HORIZONS, key=HORIZONS.__getitem__)}, or '<n>d' / '<n>w' / '<n>m' with n >= 1")
    return Horizon(_NAME_OF_DAYS.get(days, f"{days}d"), days)


def parse_horizons(horizons: HorizonLike | Iterable[HorizonLike] | Mapping[str, int]) -> list[Horizon]:
    """Read several horizons, keeping their order.

    Parameters
    ----------
    horizons : horizon, iterable of horizons, or mapping of str to int
        One value or an iterable of values accepted by :func:`parse_horizon`. A mapping
        ``name -> trading days`` (the form of :data:`HORIZONS`) is read through its
        values; each name must itself be a horizon of that many days (``{"1w": 5}`` and
        ``{"5d": 5}`` are fine, ``{"1w": 3}`` is not).

    Returns
    -------
    list of Horizon
        In the given order.

    Raises
    ------
    HorizonError
        If a value is not a horizon, a mapping's name disagrees with its days, two entries
        are the same horizon, or nothing is given.
    """
    if isinstance(horizons, Mapping):
        out = []
        for name, days in horizons.items():
            parsed, named = parse_horizon(days), parse_horizon(name)
            if named.days != parsed.days:
                raise HorizonError(f"horizon {name!r} is {named.days} trading days, not {days!r}")
            out.append(parsed)
    elif isinstance(horizons, Horizon | str | int | Integral):  # int: for the type checker (numpy ints are Integral)
        return [parse_horizon(horizons)]
    else:
        out = [parse_horizon(h) for h in horizons]
    if not out:
        raise HorizonError("no horizon given")
    days = [h.days for h in out]
    if len(set(days)) != len(days):
        raise HorizonError(f"the same horizon is given twice in {list(horizons)!r}")
    return out
