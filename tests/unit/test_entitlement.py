"""ASD entitlements against the published table (the issue's figures in MAD,
written out here independently of config/programs/asd.toml), the ranking rules
of the rule file's header, the floor and eligibility."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.configuration.programs import load_program
from disbursement.domain.entitlement import (
    Composition,
    Entitlement,
    NoRulesForYear,
    score_to_micro,
)

RULE_FILE = Path(__file__).resolve().parents[2] / "config" / "programs" / "asd.toml"
ASD = load_program(RULE_FILE)

FLOOR_MAD = 500
MAX_CHILDREN = 6
RANK_BAND = 3  # ranks 1-3 take the first amount, 4-6 the second


@dataclass(frozen=True)
class Row:
    """One year of the issue's table, in MAD."""
    young_first: int       # 0-5 or schooled 6-20, ranks 1-3
    young_later: int       # ranks 4-6
    unschooled_first: int  # unschooled 6-20, ranks 1-3
    unschooled_later: int
    disabled: int
    orphan: int


TABLE = {
    2024: Row(200, 36, 150, 24, 300, 350),
    2025: Row(250, 36, 175, 24, 300, 375),
    2026: Row(300, 36, 200, 24, 400, 400),
}
YEARS = sorted(TABLE)


def mad(amount: int) -> int:
    return amount * 100


def household(young: int = 0, schooled: int = 0, unschooled: int = 0, disabled: int = 0,
              orphan: bool = False, flat_rate: bool = False) -> Composition:
    return Composition(children_0_5=young, children_schooled_6_20=schooled,
                       children_unschooled_6_20=unschooled, disabled_children=disabled,
                       orphan=orphan, flat_rate=flat_rate)


def child_lines(ent: Entitlement) -> list[int]:
    return [line.amount_centimes for line in ent.lines if line.code.startswith("child_")]


def expected_centimes(year: int, h: Composition) -> tuple[list[int], int]:
    """The rules as the issue and the rule file state them, computed afresh:
    child lines in rank order, and the household's amount."""
    row = TABLE[year]
    if h.flat_rate:
        return [], mad(FLOOR_MAD)
    children = h.children_0_5 + h.children_schooled_6_20 + h.children_unschooled_6_20
    able = children - h.disabled_children
    # Disabled children are among the counted children and always paid (their
    # amount does not depend on rank); the others take the first ranks, the
    # better-paid category first.
    young = min(h.children_0_5 + h.children_schooled_6_20, able)
    disabled = min(h.disabled_children, MAX_CHILDREN)
    others = (["young"] * young + ["unschooled"] * (able - young))[:MAX_CHILDREN - disabled]
    kinds = others + ["disabled"] * disabled
    lines = []
    for rank, kind in enumerate(kinds, start=1):
        first = rank <= RANK_BAND
        amount = {"disabled": row.disabled,
                  "young": row.young_first if first else row.young_later,
                  "unschooled": row.unschooled_first if first else row.unschooled_later}[kind]
        if h.orphan:
            amount = max(amount, row.orphan)
        lines.append(mad(amount))
    return lines, max(sum(lines), mad(FLOOR_MAD))


# --- the rule file says what the issue says -----------------------------------

def test_rule_file_covers_exactly_the_published_years() -> None:
    assert sorted(ASD.years) == YEARS
    assert (ASD.code, ASD.currency, ASD.max_children, ASD.rank_band_size) == \
        ("asd", "MAD", MAX_CHILDREN, RANK_BAND)


@pytest.mark.parametrize("year", YEARS)
def test_rule_file_amounts_are_the_published_ones(year: int) -> None:
    row, amounts = TABLE[year], ASD.amounts_for(year)

    assert amounts.young_or_schooled == (mad(row.young_first), mad(row.young_later))
    assert amounts.unschooled == (mad(row.unschooled_first), mad(row.unschooled_later))
    assert amounts.disabled == mad(row.disabled)
    assert amounts.orphan == mad(row.orphan)
    assert amounts.floor == mad(FLOOR_MAD)


# --- each cell of the table ---------------------------------------------------

@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("category", ["young", "schooled"])
def test_young_or_schooled_child_ranks_1_to_3_then_4_to_6(year: int, category: str) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(**{category: 6}))

    assert child_lines(ent) == [mad(row.young_first)] * 3 + [mad(row.young_later)] * 3
    assert ent.amount_centimes == mad(3 * row.young_first + 3 * row.young_later)


@pytest.mark.parametrize("year", YEARS)
def test_unschooled_child_ranks_1_to_3_then_4_to_6(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(unschooled=6))

    assert child_lines(ent) == [mad(row.unschooled_first)] * 3 + [mad(row.unschooled_later)] * 3
    assert ent.amount_centimes == max(mad(3 * row.unschooled_first + 3 * row.unschooled_later),
                                      mad(FLOOR_MAD))


def test_2026_household_with_four_children_under_six() -> None:
    ent = ASD.entitlement(2026, household(young=4))

    assert ent.amount_centimes == mad(3 * 300 + 36) == 93600
    assert child_lines(ent) == [30000, 30000, 30000, 3600]
    assert sum(line.amount_centimes for line in ent.lines) == 93600


@pytest.mark.parametrize("year", YEARS)
def test_young_children_take_the_first_ranks_before_unschooled(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(unschooled=2, schooled=2))

    assert child_lines(ent) == [mad(row.young_first)] * 2 + [mad(row.unschooled_first),
                                                             mad(row.unschooled_later)]


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("category", ["young", "schooled", "unschooled"])
def test_disabled_child_line_is_the_disabled_amount(year: int, category: str) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(**{category: 2}, disabled=1))

    lines = child_lines(ent)
    assert lines[-1] == mad(row.disabled)
    assert len(lines) == 2


@pytest.mark.parametrize("year", YEARS)
def test_disabled_child_amount_does_not_fall_with_rank(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=3, unschooled=3, disabled=6))

    assert child_lines(ent) == [mad(row.disabled)] * 6
    assert ent.amount_centimes == mad(6 * row.disabled)


@pytest.mark.parametrize("year", YEARS)
def test_disabled_children_leave_the_first_ranks_to_the_others(year: int) -> None:
    # Four children 0-5, three of them disabled: the able child keeps rank 1
    # (not pushed down to a 4th-6th amount), the disabled ones follow.
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=4, disabled=3))

    assert child_lines(ent) == [mad(row.young_first)] + [mad(row.disabled)] * 3


@pytest.mark.parametrize("year", YEARS)
def test_disabled_children_are_paid_before_a_seventh_able_child(year: int) -> None:
    # Eight children, two disabled: six lines; both disabled children are among them.
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=8, disabled=2))

    assert child_lines(ent) == ([mad(row.young_first)] * 3 + [mad(row.young_later)]
                                + [mad(row.disabled)] * 2)


@pytest.mark.parametrize("year", YEARS)
def test_disabled_child_is_taken_out_of_the_unschooled_count_first(year: int) -> None:
    # One disabled child among one 0-5 and one unschooled: the able child left
    # is paid as young (the better-paid category).
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=1, unschooled=1, disabled=1))

    assert child_lines(ent) == [mad(row.young_first), mad(row.disabled)]


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("composition", [
    {"young": 1}, {"unschooled": 1}, {"schooled": 5}, {"unschooled": 6},
    {"young": 2, "unschooled": 2}, {"disabled": 1, "unschooled": 1},
])
def test_orphan_household_lines_are_at_least_the_orphan_amount(year: int, composition) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(**composition, orphan=True))

    lines = child_lines(ent)
    assert lines and all(amount >= mad(row.orphan) for amount in lines)
    assert len(lines) == sum(v for k, v in composition.items() if k != "disabled")


@pytest.mark.parametrize("year", YEARS)
def test_orphan_household_with_one_young_child(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=1, orphan=True))

    assert child_lines(ent) == [mad(max(row.young_first, row.orphan))]
    assert ent.amount_centimes == max(mad(max(row.young_first, row.orphan)), mad(FLOOR_MAD))


# --- floor, cap, flat rate ----------------------------------------------------

@pytest.mark.parametrize("year", YEARS)
def test_household_with_no_child_gets_the_flat_floor(year: int) -> None:
    ent = ASD.entitlement(year, household())

    assert ent.amount_centimes == mad(FLOOR_MAD)
    assert child_lines(ent) == []
    assert sum(line.amount_centimes for line in ent.lines) == mad(FLOOR_MAD)


@pytest.mark.parametrize("year", YEARS)
def test_small_household_is_topped_up_to_the_floor(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=1))

    assert child_lines(ent) == [mad(row.young_first)]
    assert ent.amount_centimes == mad(FLOOR_MAD)
    top_up = [line for line in ent.lines if not line.code.startswith("child_")]
    assert [line.amount_centimes for line in top_up] == [mad(FLOOR_MAD - row.young_first)]


@pytest.mark.parametrize("year", YEARS)
def test_household_above_the_floor_gets_no_top_up(year: int) -> None:
    ent = ASD.entitlement(year, household(young=3))

    assert ent.lines and all(line.code.startswith("child_") for line in ent.lines)
    assert ent.amount_centimes == mad(3 * TABLE[year].young_first)


@pytest.mark.parametrize("year", YEARS)
def test_seven_children_give_only_six_lines(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(young=7))

    assert child_lines(ent) == [mad(row.young_first)] * 3 + [mad(row.young_later)] * 3
    assert ent.amount_centimes == ASD.entitlement(year, household(young=6)).amount_centimes


@pytest.mark.parametrize("year", YEARS)
def test_seventh_child_left_out_is_the_least_paid_category(year: int) -> None:
    row = TABLE[year]

    ent = ASD.entitlement(year, household(unschooled=1, young=6))

    assert child_lines(ent) == [mad(row.young_first)] * 3 + [mad(row.young_later)] * 3


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("composition", [{}, {"young": 6, "disabled": 2}, {"unschooled": 3}])
def test_flat_rate_household_gets_the_floor_whatever_its_children(year: int, composition) -> None:
    ent = ASD.entitlement(year, household(**composition, flat_rate=True))

    assert ent.amount_centimes == mad(FLOOR_MAD)
    assert child_lines(ent) == []


@pytest.mark.parametrize("year", [2023, 2027, 1999])
def test_period_in_a_year_without_rules_is_refused(year: int) -> None:
    with pytest.raises(NoRulesForYear, match=f"asd has no amounts for {year}"):
        ASD.entitlement(year, household(young=1))


# --- eligibility --------------------------------------------------------------

@pytest.mark.parametrize("score, suspended, eligible", [
    ("0", False, True),
    ("9.743000", False, True),
    ("9.743001", False, True),
    ("9.743002", False, False),
    ("9.7431", False, False),
    ("12", False, False),
    ("9.743001", True, False),
    ("0", True, False),
])
def test_eligibility_threshold_and_suspension(score: str, suspended: bool, eligible: bool) -> None:
    assert ASD.is_eligible(score_to_micro(score), suspended) is eligible


def test_threshold_is_read_as_millionths() -> None:
    assert ASD.score_max_micro == 9_743_001
    assert score_to_micro("9.743001") == 9_743_001


def test_score_with_more_than_six_decimals_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 6 decimals"):
        score_to_micro("9.7430015")


# --- properties ----------------------------------------------------------------

@st.composite
def compositions(draw) -> Composition:
    young = draw(st.integers(0, 5))
    schooled = draw(st.integers(0, 6))
    unschooled = draw(st.integers(0, 6))
    disabled = draw(st.integers(0, young + schooled + unschooled))
    return household(young, schooled, unschooled, disabled,
                     orphan=draw(st.booleans()), flat_rate=draw(st.booleans()))


@given(year=st.sampled_from(YEARS), h=compositions())
def test_amount_follows_the_published_rules(year: int, h: Composition) -> None:
    lines, amount = expected_centimes(year, h)

    ent = ASD.entitlement(year, h)

    assert child_lines(ent) == lines
    assert ent.amount_centimes == amount


@given(year=st.sampled_from(YEARS), h=compositions())
def test_lines_always_sum_to_the_amount(year: int, h: Composition) -> None:
    ent = ASD.entitlement(year, h)

    assert sum(line.amount_centimes for line in ent.lines) == ent.amount_centimes
    assert type(ent.amount_centimes) is int
    assert all(type(line.amount_centimes) is int and line.amount_centimes > 0 for line in ent.lines)
    assert ent.amount_centimes >= mad(FLOOR_MAD)
    assert len(child_lines(ent)) <= min(MAX_CHILDREN, h.children_0_5 + h.children_schooled_6_20
                                        + h.children_unschooled_6_20)


@given(year=st.sampled_from(YEARS), h=compositions())
def test_one_more_child_never_lowers_the_amount(year: int, h: Composition) -> None:
    more = household(h.children_0_5 + 1, h.children_schooled_6_20, h.children_unschooled_6_20,
                     h.disabled_children, h.orphan, h.flat_rate)

    assert ASD.entitlement(year, more).amount_centimes >= ASD.entitlement(year, h).amount_centimes
