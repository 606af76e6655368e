"""Entitlement rules: what a household is owed in a program's month.

Plain data in, plain data out: the rules come from `config/programs/*.toml`
(read by `disbursement.configuration.programs`), the household's composition
from the registry. Each result keeps the lines that produced it so an officer
(or an auditor, years later) can see why.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from disbursement.domain.errors import BadInput

SCORE_SCALE = 1_000_000  # scores are stored as integer millionths
# A transfer not collected within this many days of becoming available expires.
EXPIRY_DAYS = 30


class NoRulesForYear(BadInput, LookupError):
    """Raised when a period falls in a year the program's rule file does not cover."""


@dataclass(frozen=True, slots=True)
class YearAmounts:
    young_or_schooled: tuple[int, int]  # centimes, ranks 1..band / after
    unschooled: tuple[int, int]
    disabled: int
    orphan: int
    floor: int


@dataclass(frozen=True, slots=True)
class Composition:
    children_0_5: int
    children_schooled_6_20: int
    children_unschooled_6_20: int
    disabled_children: int
    orphan: bool
    flat_rate: bool


@dataclass(frozen=True, slots=True)
class Line:
    code: str          # e.g. "child_rank_1_young_or_schooled", "floor_top_up"
    amount_centimes: int


@dataclass(frozen=True, slots=True)
class Entitlement:
    amount_centimes: int
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class ProgramRules:
    code: str
    name: str
    currency: str
    score_max_micro: int
    max_children: int
    rank_band_size: int
    years: dict[int, YearAmounts]
    default_partner_by_region: dict[str, str]
    # Cash is collected over this many days from the first of the period's month.
    pickup_window_days: int = 1
    # A definitive rejection may be re-issued as a new attempt to another partner,
    # when its reason code is one of these (domain/reissue.py says which never are).
    reissue_on_rejection: bool = False
    reissue_reasons: frozenset[str] = frozenset()
    # Reconciliation: days a transfer stays collectable before it expires, and
    # whether a returned transfer's household is paid its arrears in a later cycle.
    expiry_days: int = EXPIRY_DAYS
    pay_arrears: bool = False

    def amounts_for(self, year: int) -> YearAmounts:
        try:
            return self.years[year]
        except KeyError:
            raise NoRulesForYear(f"program {self.code} has no amounts for {year}") from None

    def is_eligible(self, score_micro: int, suspended: bool) -> bool:
        return not suspended and score_micro <= self.score_max_micro

    def entitlement(self, year: int, household: Composition) -> Entitlement:
        amounts = self.amounts_for(year)
        lines = [] if household.flat_rate else self._child_lines(amounts, household)
        total = sum(line.amount_centimes for line in lines)
        if total < amounts.floor:
            lines.append(Line("floor_top_up", amounts.floor - total))
            total = amounts.floor
        return Entitlement(total, tuple(lines))

    def _child_lines(self, amounts: YearAmounts, h: Composition) -> list[Line]:
        able_young = h.children_0_5 + h.children_schooled_6_20
        # Disabled children are counted inside the age counts; take them out of
        # the lower-paid category first so the others keep the better category.
        disabled_from_unschooled = min(h.disabled_children, h.children_unschooled_6_20)
        disabled_from_young = h.disabled_children - disabled_from_unschooled
        # A disabled child's amount does not depend on rank, so disabled
        # children are always paid (within the line limit) and leave the
        # better-paid first ranks to the other children.
        disabled = min(h.disabled_children, self.max_children)
        able = (["young_or_schooled"] * (able_young - disabled_from_young)
                + ["unschooled"] * (h.children_unschooled_6_20 - disabled_from_unschooled))
        children = able[: self.max_children - disabled] + ["disabled"] * disabled
        lines = []
        for rank, kind in enumerate(children, start=1):
            band = 0 if rank <= self.rank_band_size else 1
            if kind == "disabled":
                amount = max(amounts.disabled, amounts.orphan) if h.orphan else amounts.disabled
            else:
                amount = getattr(amounts, kind)[band]
                if h.orphan:
                    amount = max(amount, amounts.orphan)
                    kind = f"{kind}_orphan" if amount == amounts.orphan else kind
            lines.append(Line(f"child_rank_{rank}_{kind}", amount))
        return lines


def score_to_micro(score: str) -> int:
    value = Decimal(score) * SCORE_SCALE
    if value != value.to_integral_value():
        raise ValueError(f"score {score!r} has more than 6 decimals")
    return int(value)
