"""Service points: where cash is collected, and which point and day a
beneficiary is sent to.

Plain Python. A `PointBook` holds every partner's points and their load on each
day of the pickup window during one planning run. A household goes to a point
in its own commune first, else to the nearest point of its province (by
distance from the commune's centroid in the gazetteer), never above a point's
daily capacity in transfers or in cash, and on the least crowded open day of
the window so that collections spread instead of piling up on day one.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MICRO = 1_000_000
EARTH_RADIUS_KM = 6371.0
ALL_WEEK = "1111111"
_MASK = re.compile(r"[01]{7}")


class BadOpeningDays(ValueError):
    """Raised when opening days are neither a 7-character 0/1 mask (Monday
    first) nor a list of day names and ranges such as "mon-fri,sun"."""


class BadCoordinate(ValueError):
    """Raised when a latitude or longitude is not a decimal number within range."""


@dataclass(frozen=True, slots=True)
class ServicePoint:
    code: str
    partner_code: str
    name: str
    address: str
    region_code: str
    province_code: str
    commune_code: str
    latitude_micro: int
    longitude_micro: int
    opening_days: str               # mask, Monday first: "1111110" is closed on Sunday
    daily_capacity_transfers: int
    daily_capacity_centimes: int

    def is_open(self, day: date) -> bool:
        return self.opening_days[day.weekday()] == "1"


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    province_code: str
    region_code: str
    name: str
    latitude_micro: int
    longitude_micro: int


@dataclass(frozen=True, slots=True)
class Pick:
    point_code: str
    day: int        # index into the pickup window
    why: str


def parse_opening_days(text: str) -> str:
    """'mon-sat' / 'mon,wed,fri' / '1111100' -> a Monday-first 0/1 mask."""
    text = (text or "").strip().lower()
    if _MASK.fullmatch(text):
        return text
    if not text:
        raise BadOpeningDays("opening days are empty")
    open_days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise BadOpeningDays(f"{part!r} is not a day name ({', '.join(WEEKDAYS)}) or range")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if end < start:
            raise BadOpeningDays(f"{part!r} runs backwards (write it Monday first)")
        open_days.update(range(start, end + 1))
    return "".join("1" if i in open_days else "0" for i in range(7))


def to_micro_degrees(text: str, limit: int, name: str) -> int:
    """A decimal degree string -> integer micro-degrees (no float on the way)."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise BadCoordinate(f"{name} {text!r} is not a decimal number") from None
    if not value.is_finite() or abs(value) > limit:
        raise BadCoordinate(f"{name} {text!r} is outside -{limit}..{limit}")
    return int((value * MICRO).to_integral_value())


def distance_km(lat1: int, lon1: int, lat2: int, lon2: int) -> float:
    """Great-circle distance between two points given in micro-degrees
    (geometry, not money: floats are fine here)."""
    p1, p2 = math.radians(lat1 / MICRO), math.radians(lat2 / MICRO)
    dp, dl = p2 - p1, math.radians((lon2 - lon1) / MICRO)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


class _Candidates:
    """A partner's points for one commune in the order they are tried; `start`
    moves past points that are full on every open day, which never reopen
    during a run."""
    __slots__ = ("points", "start", "whys")

    def __init__(self, points: list[ServicePoint], whys: list[str]) -> None:
        self.points, self.whys, self.start = points, whys, 0


class PointBook:
    """Every partner's service points and their load on each window day."""

    def __init__(self, points: Iterable[ServicePoint], communes: Mapping[str, Commune],
                 window: Sequence[date],
                 used: Mapping[tuple[str, str, int], tuple[int, int]] | None = None) -> None:
        self.communes = communes
        self.window = list(window)
        self.by_province: dict[tuple[str, str], list[ServicePoint]] = {}
        self.partners: set[str] = set()
        for point in sorted(points, key=lambda p: p.code):
            self.by_province.setdefault((point.partner_code, point.province_code), []).append(point)
            self.partners.add(point.partner_code)
        # (partner, point, day) -> [transfers, centimes]
        self.used: dict[tuple[str, str, int], list[int]] = {
            key: list(value) for key, value in (used or {}).items()}
        self._open_days: dict[tuple[str, str], tuple[int, ...]] = {}
        self._exhausted: set[tuple[str, str]] = set()
        self._cache: dict[tuple[str, str, str], _Candidates] = {}

    def has_points(self, partner_code: str) -> bool:
        return partner_code in self.partners

    def load(self, partner_code: str, point_code: str, day: int) -> tuple[int, int]:
        count, centimes = self.used.get((partner_code, point_code, day), (0, 0))
        return count, centimes

    def pick(self, partner_code: str, province_code: str, commune_code: str,
             amount_centimes: int, partner_has_room: Callable[[int], bool]) -> Pick | None:
        """The point and day for one transfer, counted at once; None when no
        point of the province has room on any open day of the window."""
        cands = self._candidates(partner_code, province_code, commune_code)
        skipped_full = 0
        for index in range(cands.start, len(cands.points)):
            point = cands.points[index]
            key = (partner_code, point.code)
            if key in self._exhausted:
                if index == cands.start:
                    cands.start += 1
                skipped_full += 1
                continue
            day = self._best_day(point, amount_centimes, partner_has_room)
            if day is None:
                skipped_full += 1
                continue
            slot = self.used.setdefault((partner_code, point.code, day), [0, 0])
            slot[0] += 1
            slot[1] += amount_centimes
            if all(self.load(partner_code, point.code, d)[0] >= point.daily_capacity_transfers
                   for d in self._days_open(point)):
                self._exhausted.add(key)
            why = cands.whys[index]
            if skipped_full:
                why += f"; {skipped_full} point(s) tried before it had no room that day"
            return Pick(point.code, day, why)
        return None

    def _best_day(self, point: ServicePoint, amount: int,
                  partner_has_room: Callable[[int], bool]) -> int | None:
        best, best_count = None, None
        for day in self._days_open(point):
            count, centimes = self.load(point.partner_code, point.code, day)
            if (count < point.daily_capacity_transfers
                    and centimes + amount <= point.daily_capacity_centimes
                    and (best_count is None or count < best_count) and partner_has_room(day)):
                best, best_count = day, count
        return best

    def _days_open(self, point: ServicePoint) -> tuple[int, ...]:
        key = (point.partner_code, point.code)
        days = self._open_days.get(key)
        if days is None:
            days = self._open_days[key] = tuple(
                i for i, day in enumerate(self.window) if point.is_open(day))
        return days

    def _candidates(self, partner: str, province: str, commune: str) -> _Candidates:
        key = (partner, province, commune)
        cands = self._cache.get(key)
        if cands is None:
            cands = self._cache[key] = self._order(partner, province, commune)
        return cands

    def _order(self, partner: str, province: str, commune: str) -> _Candidates:
        in_province = self.by_province.get((partner, province), [])
        local = [p for p in in_province if p.commune_code == commune]
        others = [p for p in in_province if p.commune_code != commune]
        whys = [f"service point {p.code} in the household's commune {commune}" for p in local]
        centre = self.communes.get(commune)
        if centre is None:
            whys += [f"service point {p.code} in province {province} (commune {commune} not in "
                     "the gazetteer: points taken by code)" for p in others]
        else:
            dist = {p.code: distance_km(centre.latitude_micro, centre.longitude_micro,
                                        p.latitude_micro, p.longitude_micro) for p in others}
            others.sort(key=lambda p: (dist[p.code], p.code))
            whys += [f"service point {p.code}, nearest in province {province} "
                     f"({dist[p.code]:.1f} km from commune {commune})" for p in others]
        return _Candidates(local + others, whys)
