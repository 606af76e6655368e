"""Routing: which partner carries a household's transfer, at what fee, and
(for cash) at which service point and from which day.

Plain Python. Planning builds one `Router` per run and asks it once per
household; the router keeps each partner's daily load in memory, so the run
never goes back to the database to learn whether a partner is full.

The rules, in order: the household's chosen partner, then the program's default
partner for its region, then every other partner by code. A partner is skipped
when it does not cover the region or province, does not offer the channel, has
an open circuit breaker, or is full on every day it could take the transfer.
Every decision keeps the steps that led to it (`Decision.steps`), which is what
`disburse routing explain` shows.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from disbursement.domain.money import format_units
from disbursement.domain.service_points import PointBook

CASH = "cash"
CHANNELS = frozenset({CASH, "wallet", "bank"})
# Days within which a payment must show on the partner's statement before its
# absence becomes an open reconciliation exception.
STATEMENT_SLA_DAYS = 3


class FeeTableGap(LookupError):
    """Raised when an amount is above every tier of a partner's fee table for
    a channel: the fee cannot be known, so the transfer cannot be routed there."""


@dataclass(frozen=True, slots=True)
class FeeTier:
    up_to_centimes: int     # inclusive upper bound of the transfer amount
    fee_centimes: int


@dataclass(frozen=True, slots=True)
class FundingAccount:
    """The programme's account at a bank partner, debited by every payment order."""
    name: str
    rib: str                # 24 digits, key checked when the configuration is read
    bic: str | None = None


@dataclass(frozen=True)
class Partner:
    code: str
    name: str
    protocol: str
    base_url: str
    channels: frozenset[str]
    regions: frozenset[str]
    # Empty: every province of its regions. Otherwise only these provinces.
    provinces: frozenset[str] = frozenset()
    # Transfers a day (per pickup day for cash, per dispatch day otherwise); None: no limit.
    daily_capacity_transfers: int | None = None
    # channel -> tiers by ascending bound; a channel without a table carries no fee.
    fees: Mapping[str, tuple[FeeTier, ...]] = field(default_factory=dict)
    statement_sla_days: int = STATEMENT_SLA_DAYS
    # Bank partners (protocol iso20022) only: the account every payment order debits.
    funding_account: FundingAccount | None = None

    def covers(self, region_code: str, channel: str, province_code: str | None = None) -> bool:
        return self.coverage_gap(region_code, province_code, channel) is None

    def coverage_gap(self, region_code: str, province_code: str | None, channel: str) -> str | None:
        """Why this partner cannot carry the transfer on coverage grounds, or None."""
        if region_code not in self.regions:
            return f"does not cover region {region_code}"
        if province_code and self.provinces and province_code not in self.provinces:
            return f"does not cover province {province_code}"
        if channel not in self.channels:
            return f"does not offer {channel}"
        return None

    def fee_for(self, channel: str, amount_centimes: int) -> tuple[int, str]:
        """The fee and the tier it came from. Raises FeeTableGap above the last tier."""
        tiers = self.fees.get(channel)
        if not tiers:
            return 0, f"no fee for {channel}"
        for tier in tiers:
            if amount_centimes <= tier.up_to_centimes:
                return tier.fee_centimes, (f"fee {format_units(tier.fee_centimes)} MAD: tier up to "
                                           f"{format_units(tier.up_to_centimes)} MAD for {channel}")
        raise FeeTableGap(f"{format_units(amount_centimes)} MAD is above the last fee tier for "
                          f"{channel} ({format_units(tiers[-1].up_to_centimes)} MAD)")


@dataclass(frozen=True, slots=True)
class Request:
    region_code: str
    province_code: str
    commune_code: str
    channel: str
    chosen_partner: str | None
    amount_centimes: int
    # Partners that must not carry it: a re-issue never goes back to a partner
    # that already had an attempt of the same instruction.
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    partner_code: str | None
    reason: str                      # short, for the instruction row
    steps: tuple[str, ...]           # every rule tried, every partner skipped and why
    fee_centimes: int = 0
    service_point: str | None = None
    pickup_day: int | None = None    # index into the pickup window (cash); 0 otherwise


class PartnerDays:
    """Transfers given to each partner on each day of a planning run."""

    def __init__(self, partners: Mapping[str, Partner], days: int,
                 used: Mapping[tuple[str, int], int] | None = None) -> None:
        self.capacity = {code: p.daily_capacity_transfers for code, p in partners.items()}
        self.days = days
        self.used: dict[tuple[str, int], int] = dict(used or {})

    def has_room(self, partner_code: str, day: int) -> bool:
        cap = self.capacity.get(partner_code)
        return cap is None or self.used.get((partner_code, day), 0) < cap

    def take(self, partner_code: str, day: int) -> None:
        self.used[(partner_code, day)] = self.used.get((partner_code, day), 0) + 1


# (partner code or None, short reason, static steps before it); cached per key
_Candidates = tuple[tuple[Partner, str], ...]


class Router:
    """Routes one household at a time, keeping capacity counters in memory."""

    def __init__(self, partners: Mapping[str, Partner], default_by_region: Mapping[str, str],
                 *, open_breakers: Iterable[str] = (), window_days: int = 1,
                 load: PartnerDays | None = None, points: PointBook | None = None) -> None:
        self.partners = partners
        self.defaults = default_by_region
        self.open_breakers = frozenset(open_breakers)
        self.window_days = max(1, window_days)
        self.load = load or PartnerDays(partners, self.window_days)
        self.points = points
        self._candidates: dict[tuple[str, str, str, str | None],
                               tuple[_Candidates, tuple[str, ...]]] = {}

    def route(self, req: Request) -> Decision:
        candidates, static_steps = self._static(req.region_code, req.province_code, req.channel,
                                                req.chosen_partner)
        steps = list(static_steps)
        for partner, why in candidates:
            label = f"{partner.code} ({why})"
            if partner.code in req.excluded:
                steps.append(f"{label}: skipped, already had an attempt of this instruction")
                continue
            if partner.code in self.open_breakers:
                steps.append(f"{label}: skipped, circuit breaker open")
                continue
            try:
                fee, fee_why = partner.fee_for(req.channel, req.amount_centimes)
            except FeeTableGap as exc:
                steps.append(f"{label}: skipped, {exc}")
                continue
            placed = self._place(partner, req, steps, label)
            if placed is None:
                continue
            point, day = placed
            self.load.take(partner.code, day)
            steps.append(f"{label}: chosen; {fee_why}")
            return Decision(partner.code, why, tuple(steps), fee, point, day)
        if not candidates:
            return Decision(None, f"no partner covers region {req.region_code} for {req.channel}",
                            tuple(steps))
        return Decision(None, "every covering partner was skipped", tuple(steps))

    def _place(self, partner: Partner, req: Request, steps: list[str],
               label: str) -> tuple[str | None, int] | None:
        """The service point and day for this partner, or None (with the step
        saying why) when it has no room."""
        if req.channel != CASH:
            if self.load.has_room(partner.code, 0):
                return None, 0
            steps.append(f"{label}: skipped, full on the dispatch day "
                         f"(capacity {partner.daily_capacity_transfers} a day)")
            return None
        if self.points is not None and self.points.has_points(partner.code):
            pick = self.points.pick(partner.code, req.province_code, req.commune_code,
                                    req.amount_centimes,
                                    lambda day: self.load.has_room(partner.code, day))
            if pick is None:
                steps.append(f"{label}: skipped, " + (
                    f"no service point with room in province {req.province_code} during the "
                    f"{self.window_days}-day window" if self._has_room(partner.code) else
                    self._full(partner)))
                return None
            steps.append(f"{label}: {pick.why}")
            return pick.point_code, pick.day
        # A partner without a registered network assigns the point itself:
        # spread over the window on its own daily capacity.
        day = min((d for d in range(self.window_days) if self.load.has_room(partner.code, d)),
                  key=lambda d: self.load.used.get((partner.code, d), 0), default=None)
        if day is None:
            steps.append(f"{label}: skipped, {self._full(partner)}")
            return None
        return None, day

    def _has_room(self, partner_code: str) -> bool:
        return any(self.load.has_room(partner_code, d) for d in range(self.window_days))

    def _full(self, partner: Partner) -> str:
        return (f"full on every day of the {self.window_days}-day window "
                f"(capacity {partner.daily_capacity_transfers} a day)")

    def _static(self, region: str, province: str, channel: str,
                chosen: str | None) -> tuple[_Candidates, tuple[str, ...]]:
        key = (region, province, channel, chosen)
        cached = self._candidates.get(key)
        if cached is None:
            cached = self._candidates[key] = self._order(region, province, channel, chosen)
        return cached

    def _order(self, region: str, province: str, channel: str,
               chosen: str | None) -> tuple[_Candidates, tuple[str, ...]]:
        """Partners in the order the rules try them, those that cannot cover
        the household already set aside with their reason."""
        steps: list[str] = []
        out: list[tuple[Partner, str]] = []
        tried: set[str] = set()
        chosen_gap: str | None = None
        if chosen:
            partner = self.partners.get(chosen)
            chosen_gap = "unknown partner" if partner is None else partner.coverage_gap(
                region, province, channel)
            tried.add(chosen)
            if partner is None or chosen_gap:
                steps.append(f"chosen partner {chosen}: skipped, {chosen_gap}")
            else:
                out.append((partner, "chosen partner covers the region"))
        why_not_chosen = ("chosen partner does not cover the region" if chosen
                          else "no chosen partner")
        default = self.defaults.get(region)
        if default and default not in tried:
            tried.add(default)
            partner = self.partners.get(default)
            gap = "unknown partner" if partner is None else partner.coverage_gap(
                region, province, channel)
            if partner is None or gap:
                steps.append(f"program default {default} for region {region}: skipped, {gap}")
            else:
                out.append((partner, f"program default for region {region} ({why_not_chosen})"))
        for code in sorted(self.partners):
            if code in tried:
                continue
            gap = self.partners[code].coverage_gap(region, province, channel)
            if gap:
                steps.append(f"{code}: skipped, {gap}")
            else:
                out.append((self.partners[code],
                            f"first partner covering region {region} for {channel}"
                            if not out else f"next partner covering region {region} for {channel}"))
        return tuple(out), tuple(steps)

