"""A cycle at a glance: eligibility, totals, batches, and what changed since
the program's previous cycle (households added, removed, amount changed and
which rule lines changed)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased

from disbursement.db.models import Batch, Cycle, Household, PaymentInstruction
from disbursement.domain.entitlement import ProgramRules
from disbursement.services.cycles.planning import HELD_BY_WALLET_RULES

CHANGED_EXAMPLES = 20
# Reasons are tallied over this many changed households at most, so a cycle of
# millions still renders quickly; the page says when the tally is partial.
REASON_ROWS = 20_000


class CycleNotFound(LookupError):
    """Raised when no cycle has the given id."""


@dataclass
class Change:
    household_id: str
    head_name: str
    before_centimes: int
    after_centimes: int
    why: list[str]


@dataclass
class CycleChanges:
    previous: Cycle | None
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    delta_centimes: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    reasons_partial: bool = False
    examples: list[Change] = field(default_factory=list)


@dataclass
class CycleSummary:
    cycle: Cycle
    eligible_households: int
    instructions: int
    amount_centimes: int
    unroutable: int                  # no transfer: no partner could, or the wallet rules held it
    batches: list[Batch]
    changes: CycleChanges
    held_by_wallet_rules: int = 0
    # (household id, amount, reason) of the first held instructions, for the officer to act on
    held_examples: list[tuple[str, int, str]] = field(default_factory=list)


def list_cycles(session: Session, limit: int = 50):
    """Cycles, newest first, with their instruction count and total."""
    totals = (select(PaymentInstruction.cycle_id, func.count().label("n"),
                     func.sum(PaymentInstruction.amount_centimes).label("amount"))
              .group_by(PaymentInstruction.cycle_id).subquery())
    return session.execute(
        select(Cycle, func.coalesce(totals.c.n, 0), func.coalesce(totals.c.amount, 0))
        .outerjoin(totals, totals.c.cycle_id == Cycle.id)
        .order_by(Cycle.period.desc(), Cycle.id.desc()).limit(limit)).all()


def summary(session: Session, cycle_id: int, rules: ProgramRules | None) -> CycleSummary:
    cycle = session.get(Cycle, cycle_id)
    if cycle is None:
        raise CycleNotFound(f"cycle {cycle_id} not found")
    eligible = 0
    if rules is not None:
        eligible = session.execute(select(func.count()).select_from(Household).where(
            Household.score_micro <= rules.score_max_micro,
            Household.suspended.is_(False))).scalar_one()
    held = and_(PaymentInstruction.partner_code.is_(None),
                PaymentInstruction.route_reason.startswith(HELD_BY_WALLET_RULES))
    count, amount, unroutable, held_count = session.execute(
        select(func.count(), func.coalesce(func.sum(PaymentInstruction.amount_centimes), 0),
               func.count(case((PaymentInstruction.partner_code.is_(None), 1))),
               func.count(case((held, 1))))
        .where(PaymentInstruction.cycle_id == cycle_id)).one()
    examples = [(household_id, amount_centimes, reason[len(HELD_BY_WALLET_RULES):])
                for household_id, amount_centimes, reason in session.execute(
        select(Household.household_id, PaymentInstruction.amount_centimes,
               PaymentInstruction.route_reason)
        .join(Household, Household.id == PaymentInstruction.household_pk)
        .where(PaymentInstruction.cycle_id == cycle_id, held)
        .order_by(PaymentInstruction.id).limit(CHANGED_EXAMPLES))] if held_count else []
    batches = session.execute(select(Batch).where(Batch.cycle_id == cycle_id)
                              .order_by(Batch.partner_code, Batch.seq)).scalars().all()
    return CycleSummary(cycle, eligible, count, int(amount), unroutable, list(batches),
                        changes(session, cycle), held_count, examples)


def changes(session: Session, cycle: Cycle) -> CycleChanges:
    previous = session.execute(select(Cycle).where(Cycle.program == cycle.program,
                                                   Cycle.period < cycle.period)
                               .order_by(Cycle.period.desc()).limit(1)).scalar_one_or_none()
    result = CycleChanges(previous)
    if previous is None:
        return result
    now, before = aliased(PaymentInstruction), aliased(PaymentInstruction)
    pair = and_(now.household_pk == before.household_pk, before.cycle_id == previous.id)
    # Added / changed / unchanged from this cycle's side, removed from the other.
    added, changed, unchanged, delta = session.execute(
        select(func.count(case((before.id.is_(None), 1))),
               func.count(case((and_(before.id.is_not(None),
                                     before.amount_centimes != now.amount_centimes), 1))),
               func.count(case((before.amount_centimes == now.amount_centimes, 1))),
               func.coalesce(func.sum(now.amount_centimes
                                      - func.coalesce(before.amount_centimes, 0)), 0))
        .select_from(now).outerjoin(before, pair).where(now.cycle_id == cycle.id)).one()
    removed, removed_amount = session.execute(
        select(func.count(), func.coalesce(func.sum(before.amount_centimes), 0))
        .select_from(before)
        .outerjoin(now, and_(now.household_pk == before.household_pk, now.cycle_id == cycle.id))
        .where(before.cycle_id == previous.id, now.id.is_(None))).one()
    result.added, result.changed = added, changed
    result.unchanged, result.removed = unchanged, removed
    result.delta_centimes = int(delta) - int(removed_amount)
    rows = session.execute(
        select(Household.household_id, Household.head_name, before.amount_centimes,
               now.amount_centimes, before.lines, now.lines)
        .select_from(now).join(before, pair).join(Household, Household.id == now.household_pk)
        .where(now.cycle_id == cycle.id, before.amount_centimes != now.amount_centimes)
        .order_by(now.id).limit(REASON_ROWS)).all()
    tally: Counter[str] = Counter()
    for i, (household_id, name, was, is_, old_lines, new_lines) in enumerate(rows):
        why = line_changes(old_lines, new_lines)
        tally.update(why)
        if i < CHANGED_EXAMPLES:
            result.examples.append(Change(household_id, name, was, is_, why))
    result.reasons = tally.most_common()
    result.reasons_partial = len(rows) == REASON_ROWS and changed > REASON_ROWS
    return result


def line_changes(old_lines: list, new_lines: list) -> list[str]:
    """Which rule lines differ between two instructions, in words."""
    old = dict(old_lines)
    new = dict(new_lines)
    why = []
    for code in sorted(old.keys() | new.keys()):
        if code not in old:
            why.append(f"{code} added")
        elif code not in new:
            why.append(f"{code} removed")
        elif old[code] != new[code]:
            why.append(f"{code} {'raised' if new[code] > old[code] else 'lowered'}")
    return why
