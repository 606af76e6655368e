"""Routing rules with capacity, breakers, fees and service points (pure, no I/O)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disbursement.configuration.communes import load_communes
from disbursement.configuration.errors import ConfigError
from disbursement.configuration.partners import load_partners, parse_partners
from disbursement.configuration.regions import load_regions
from disbursement.domain.routing import (
    FeeTableGap,
    FeeTier,
    Partner,
    PartnerDays,
    Request,
    Router,
)
from disbursement.domain.service_points import (
    BadOpeningDays,
    Commune,
    PointBook,
    ServicePoint,
    distance_km,
    parse_opening_days,
)
from disbursement.services.registry.generator import COMMUNES_PER_PROVINCE

CONFIG = Path(__file__).resolve().parents[2] / "config"
TIERS = (FeeTier(50_000, 800), FeeTier(100_000, 1_600), FeeTier(200_000, 2_400))
MONDAY = date(2026, 6, 1)
WINDOW = [MONDAY + timedelta(days=i) for i in range(5)]


def partner(code: str, regions=("01",), channels=("cash", "wallet"), provinces=(),
            capacity=None, fees=None) -> Partner:
    return Partner(code=code, name=code.title(), protocol="rest", base_url="http://p.invalid",
                   channels=frozenset(channels), regions=frozenset(regions),
                   provinces=frozenset(provinces), daily_capacity_transfers=capacity,
                   fees=fees if fees is not None else {"cash": TIERS, "wallet": TIERS})


def request(channel="cash", chosen=None, amount=40_000, province="011",
            commune="011001", region="01") -> Request:
    return Request(region, province, commune, channel, chosen, amount)


def point(code, partner_code="ALPHA", commune="011001", province="011", lat=35_000_000,
          lon=-5_000_000, days="1111111", transfers=10, centimes=10_000_000) -> ServicePoint:
    return ServicePoint(code, partner_code, code, "somewhere", province[:2], province, commune,
                        lat, lon, days, transfers, centimes)


COMMUNES = {"011001": Commune("011001", "011", "01", "A", 35_000_000, -5_000_000),
            "011002": Commune("011002", "011", "01", "B", 35_100_000, -5_000_000)}


# --- coverage and order ------------------------------------------------------------

def test_province_outside_a_partners_list_is_not_covered_and_routing_says_so() -> None:
    partners = {"ALPHA": partner("ALPHA", provinces=("012",)), "BRAVO": partner("BRAVO")}
    decision = Router(partners, {"01": "ALPHA"}).route(request(province="011"))

    assert decision.partner_code == "BRAVO"
    assert ("program default ALPHA for region 01: skipped, does not cover province 011"
            in decision.steps)


def test_chosen_partner_first_then_default_then_others() -> None:
    partners = {c: partner(c) for c in ("ALPHA", "BRAVO", "CHARLIE")}
    router = Router(partners, {"01": "BRAVO"})

    assert router.route(request(chosen="CHARLIE")).partner_code == "CHARLIE"
    assert router.route(request()).partner_code == "BRAVO"


def test_coverage_gap_leaves_the_transfer_unrouted_with_every_reason() -> None:
    partners = {"ALPHA": partner("ALPHA", regions=("02",)),
                "BRAVO": partner("BRAVO", channels=("bank",))}
    decision = Router(partners, {}).route(request())

    assert decision.partner_code is None
    assert decision.steps == ("ALPHA: skipped, does not cover region 01",
                              "BRAVO: skipped, does not offer cash")


# --- capacity, breaker -------------------------------------------------------------

def test_a_full_partner_spills_to_the_next_covering_partner() -> None:
    partners = {"ALPHA": partner("ALPHA", capacity=2), "BRAVO": partner("BRAVO")}
    router = Router(partners, {"01": "ALPHA"})

    chosen = [router.route(request(channel="wallet")).partner_code for _ in range(4)]

    assert chosen == ["ALPHA", "ALPHA", "BRAVO", "BRAVO"]
    last = router.route(request(channel="wallet"))
    assert any("ALPHA" in s
               and "full on the dispatch day (capacity 2 a day)" in s for s in last.steps)


def test_cash_capacity_is_per_day_of_the_pickup_window() -> None:
    partners = {"ALPHA": partner("ALPHA", capacity=2), "BRAVO": partner("BRAVO")}
    router = Router(partners, {"01": "ALPHA"}, window_days=3)

    decisions = [router.route(request()) for _ in range(7)]

    assert [d.partner_code for d in decisions] == ["ALPHA"] * 6 + ["BRAVO"]
    assert sorted(d.pickup_day for d in decisions[:6]) == [0, 0, 1, 1, 2, 2]


def test_an_open_breaker_routes_elsewhere() -> None:
    partners = {"ALPHA": partner("ALPHA"), "BRAVO": partner("BRAVO")}
    decision = Router(partners, {"01": "ALPHA"}, open_breakers={"ALPHA"}).route(request())

    assert decision.partner_code == "BRAVO"
    assert decision.steps[0] == ("ALPHA (program default for region 01 (no chosen partner)): "
                                 "skipped, circuit breaker open")


# --- fees --------------------------------------------------------------------------

@pytest.mark.parametrize("amount, fee", [(1, 800), (50_000, 800), (50_001, 1_600),
                                         (100_000, 1_600), (100_001, 2_400), (200_000, 2_400)])
def test_fee_comes_from_the_tier_holding_the_amount(amount: int, fee: int) -> None:
    assert partner("ALPHA").fee_for("cash", amount)[0] == fee


def test_amount_above_the_last_tier_is_refused_and_routing_moves_on() -> None:
    with pytest.raises(FeeTableGap, match=re.escape("2000.01 MAD is above the last fee tier")):
        partner("ALPHA").fee_for("cash", 200_001)
    partners = {"ALPHA": partner("ALPHA"), "BRAVO": partner("BRAVO", fees={})}
    decision = Router(partners, {"01": "ALPHA"}).route(request(amount=200_001))
    assert (decision.partner_code, decision.fee_centimes) == ("BRAVO", 0)


@given(amount=st.integers(1, 200_000))
def test_fee_is_the_first_tier_whose_bound_holds_the_amount(amount: int) -> None:
    fee, _ = partner("ALPHA").fee_for("cash", amount)
    tier = next(t for t in TIERS if amount <= t.up_to_centimes)

    assert fee == tier.fee_centimes
    assert all(amount > t.up_to_centimes for t in TIERS[:TIERS.index(tier)])


def test_fee_tables_out_of_order_are_refused() -> None:
    raw = {"name": "X", "protocol": "rest", "base_url": "http://x", "channels": ["cash"],
           "regions": ["01"], "fees": {"cash": [[100, 1], [50, 2]]}}
    with pytest.raises(ConfigError, match="tier bounds must increase"):
        parse_partners(Path("partners.toml"), {"partners": {"X": raw}})


def test_configured_partners_have_fee_tables_and_capacity() -> None:
    partners = load_partners(CONFIG)
    assert partners["BARID"].fee_for("cash", 40_000)[0] == 800
    assert partners["BARID"].fee_for("cash", 150_000)[0] == 2_400
    assert not partners["WAFACASH"].covers("10", "cash", "102")
    assert partners["WAFACASH"].covers("10", "cash", "101")


# --- service points ----------------------------------------------------------------

def book(points, used=None) -> PointBook:
    return PointBook(points, COMMUNES, WINDOW, used)


def test_a_point_in_the_households_commune_comes_first() -> None:
    points = book([point("NEAR", commune="011002", lat=35_000_001), point("HOME")])
    pick = points.pick("ALPHA", "011", "011001", 100, lambda day: True)

    assert pick.point_code == "HOME"
    assert "in the household's commune 011001" in pick.why


def test_then_the_nearest_point_of_the_province() -> None:
    points = book([point("FAR", commune="011002", lat=36_000_000),
                   point("NEAR", commune="011002", lat=35_100_000),
                   point("OTHER-PROVINCE", province="012", commune="012001")])
    pick = points.pick("ALPHA", "011", "011001", 100, lambda day: True)

    assert pick.point_code == "NEAR"
    assert "nearest in province 011 (11.1 km from commune 011001)" in pick.why


def test_a_full_point_gives_way_and_no_point_elsewhere_is_used() -> None:
    points = book([point("HOME", transfers=1, days="1000000"),
                   point("NEAR", commune="011002", transfers=1, days="1000000")])
    picks = [points.pick("ALPHA", "011", "011001", 100, lambda day: True) for _ in range(3)]

    assert [p and p.point_code for p in picks] == ["HOME", "NEAR", None]


def test_cash_capacity_in_centimes_is_respected() -> None:
    points = book([point("HOME", centimes=100_000, days="1000000"),
                   point("NEAR", commune="011002", days="1000000")])
    first = points.pick("ALPHA", "011", "011001", 60_000, lambda day: True)
    second = points.pick("ALPHA", "011", "011001", 60_000, lambda day: True)

    assert (first.point_code, second.point_code) == ("HOME", "NEAR")


def test_collections_spread_over_the_open_days_of_the_window() -> None:
    # Open Monday to Thursday: the Friday of the window is never used.
    points = book([point("HOME", days="1111000", transfers=100)])
    days = [points.pick("ALPHA", "011", "011001", 100, lambda day: True).day for _ in range(8)]

    assert sorted(days) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_router_records_point_and_day_for_cash_only() -> None:
    partners = {"ALPHA": partner("ALPHA")}
    router = Router(partners, {"01": "ALPHA"}, window_days=5, points=book([point("HOME")]))

    cash = router.route(request())
    wallet = router.route(request(channel="wallet"))

    assert (cash.service_point, cash.fee_centimes) == ("HOME", 800)
    assert (wallet.service_point, wallet.pickup_day) == (None, 0)


def test_a_partner_whose_points_are_full_is_skipped_for_the_next() -> None:
    partners = {"ALPHA": partner("ALPHA"), "BRAVO": partner("BRAVO")}
    router = Router(partners, {"01": "ALPHA"}, window_days=1,
                    points=PointBook([point("A1", transfers=1)], COMMUNES, WINDOW[:1]))

    assert [router.route(request()).partner_code for _ in range(2)] == ["ALPHA", "BRAVO"]
    assert any("no service point with room in province 011" in s
               for s in router.route(request()).steps)


@pytest.mark.parametrize("text, mask", [("mon-sat", "1111110"), ("mon,wed,fri", "1010100"),
                                        ("1111100", "1111100"), ("Mon-Fri, Sun", "1111101")])
def test_opening_days_are_read_from_names_ranges_or_a_mask(text: str, mask: str) -> None:
    assert parse_opening_days(text) == mask


@pytest.mark.parametrize("text", ["", "monday", "sat-mon", "11111"])
def test_bad_opening_days_are_refused(text: str) -> None:
    with pytest.raises(BadOpeningDays):
        parse_opening_days(text)


def test_distance_of_one_tenth_of_a_degree_of_latitude() -> None:
    assert round(distance_km(35_000_000, -5_000_000, 35_100_000, -5_000_000), 1) == 11.1


def test_gazetteer_holds_every_commune_the_registry_generator_draws() -> None:
    communes = load_communes(CONFIG / "communes.csv")
    regions = load_regions()
    expected = {f"{prov}{n:03d}": (prov, code) for code, region in regions.items()
                for prov in region.provinces for n in range(1, COMMUNES_PER_PROVINCE + 1)}

    assert {c: (v.province_code, v.region_code) for c, v in communes.items()} == expected


# --- invariants --------------------------------------------------------------------

POINTS = st.lists(st.tuples(st.sampled_from(["011001", "011002", "012001"]),
                            st.integers(0, 3), st.integers(0, 300_000),
                            st.sampled_from(["1111111", "1010100", "0000011"])),
                  min_size=0, max_size=6)
HOUSEHOLDS = st.lists(st.tuples(st.sampled_from(["011001", "011002", "012001"]),
                                st.integers(1, 150_000)), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(points=POINTS, households=HOUSEHOLDS, capacity=st.one_of(st.none(), st.integers(0, 6)))
def test_never_above_capacity_and_a_point_in_the_province_whenever_one_has_room(
        points, households, capacity) -> None:
    rows = [point(f"P{i}", commune=commune, province=commune[:3], transfers=t, centimes=c,
                  days=days) for i, (commune, t, c, days) in enumerate(points)]
    # A point elsewhere: the partner has a registered network, so cash needs a point.
    rows.append(point("ELSEWHERE", commune="019001", province="019"))
    partners = {"ALPHA": partner("ALPHA", capacity=capacity)}
    pointbook = book(rows)
    router = Router(partners, {"01": "ALPHA"}, window_days=len(WINDOW), points=pointbook)
    by_code = {p.code: p for p in rows}
    for commune, amount in households:
        province = commune[:3]
        room = [(p.code, d) for p in rows if p.province_code == province
                for d in range(len(WINDOW)) if p.is_open(WINDOW[d])
                and pointbook.load("ALPHA", p.code, d)[0] < p.daily_capacity_transfers
                and pointbook.load("ALPHA", p.code, d)[1] + amount <= p.daily_capacity_centimes
                and router.load.has_room("ALPHA", d)]
        decision = router.route(request(province=province, commune=commune, amount=amount))
        if room:
            assert decision.partner_code == "ALPHA"
            assert by_code[decision.service_point].province_code == province
        else:
            assert decision.partner_code is None
    for (_, code, day), (count, centimes) in pointbook.used.items():
        assert count <= by_code[code].daily_capacity_transfers
        assert centimes <= by_code[code].daily_capacity_centimes
        assert by_code[code].is_open(WINDOW[day])
    for count in router.load.used.values():
        assert capacity is None or count <= capacity


@given(n=st.integers(1, 60), capacity=st.integers(1, 10), days=st.integers(1, 5))
def test_partner_day_counts_never_exceed_capacity(n: int, capacity: int, days: int) -> None:
    partners = {"ALPHA": partner("ALPHA", capacity=capacity), "BRAVO": partner("BRAVO")}
    router = Router(partners, {"01": "ALPHA"}, window_days=days)
    decisions = [router.route(request()) for _ in range(n)]

    assert sum(d.partner_code == "ALPHA" for d in decisions) == min(n, capacity * days)
    assert all(v <= capacity for (code, _), v in router.load.used.items() if code == "ALPHA")
    assert isinstance(router.load, PartnerDays)
