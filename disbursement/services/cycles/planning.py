"""Cycle planning: eligible households become payment instructions, each with
a first transfer routed to a partner and grouped into batches per partner.

Every rule a partner applies at dispatch is applied here first, so approvers
never approve an amount that cannot be paid. A wallet household whose amount
is above its wallet tier's ceiling, or whose number the wallet would refuse
(`WalletRules.refusal`, the very check dispatch keeps as a last guard), is
held: its instruction is recorded with no transfer and no batch, its reason
("held by the wallet rules: WL04 ...") on the instruction and counted on the
cycle's review page. Held, not moved to another channel: the channel is the
household's choice in the registry (cash means travelling to an agency with
an ID card), and a wrong tier or number is a registry error to correct, not
something to route around silently.

Idempotent by construction: an instruction is unique per program, period and
household in the database, and only households without one are read, so
planning the same cycle twice creates nothing new (and planning again after a
new registry import adds only the newcomers, in new batches).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from disbursement.db.bulk import reserve_ids, write_rows
from disbursement.db.models import (
    Batch,
    Cycle,
    Household,
    PaymentInstruction,
    Transfer,
    TransferEvent,
    utcnow,
)
from disbursement.db.upsert import insert_ignore
from disbursement.domain.entitlement import Composition, ProgramRules
from disbursement.domain.errors import BadInput, NotFound
from disbursement.domain.references import new_reference
from disbursement.domain.routing import Decision, Request
from disbursement.domain.states import BatchStatus, Role, TransferStatus
from disbursement.domain.wallet import wallet_number
from disbursement.services.cycles import routing
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from disbursement.services.tracking.transitions import EVENT_COLUMNS

HOUSEHOLDS_PER_STEP = 5_000
WALLET = "wallet"
# The route reason of an instruction the wallet rules hold (no transfer, no batch).
HELD_BY_WALLET_RULES = "held by the wallet rules: "
PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
INSTRUCTION_COLUMNS = ["id", "cycle_id", "program", "period", "household_pk", "amount_centimes",
                       "currency", "lines", "partner_code", "route_reason", "route_explanation_id",
                       "created_at"]
TRANSFER_COLUMNS = ["id", "instruction_id", "batch_id", "reference", "attempt", "partner_code",
                    "channel", "amount_centimes", "currency", "fee_centimes", "service_point",
                    "pickup_from", "status", "chunk_no", "updated_at"]



class BadPeriod(BadInput, ValueError):
    """Raised when a period is not YYYY-MM."""


class UnknownProgram(NotFound, LookupError):
    """Raised when no rule file in config/programs/ defines the program."""


@dataclass
class PlanResult:
    cycle_id: int
    program: str
    period: str
    eligible_new: int = 0
    instructions_created: int = 0
    unroutable: int = 0             # held ones included: neither has a transfer
    held_by_wallet_rules: int = 0
    amount_centimes: int = 0
    fee_centimes: int = 0
    batches_created: list[int] = field(default_factory=list)


@dataclass
class _OpenBatch:
    id: int
    count: int = 0
    total: int = 0
    fees: int = 0


def parse_period(period: str) -> int:
    match = PERIOD_RE.match(period)
    if not match:
        raise BadPeriod(f"period {period!r} is not YYYY-MM")
    return int(match.group(1))


def plan_cycle(svc: Services, program_code: str, period: str, actor: Actor,
               progress=None) -> PlanResult:
    actor.require(Role.MAKER)
    year = parse_period(period)
    rules = svc.programs.get(program_code)
    if rules is None:
        raise UnknownProgram(f"unknown program {program_code!r}")
    rules.amounts_for(year)  # fail early when the year has no rule
    with svc.uow() as session:
        cycle = _get_or_create_cycle(session, program_code, period, actor)
        result = PlanResult(cycle.id, program_code, period)
        planner = _Planner(svc, session, rules, year, cycle, actor, result)
        for chunk in _new_eligible(session, rules, program_code, period):
            planner.add(chunk)
            if progress:
                progress(len(chunk))
        planner.close_batches()
        audit.record(session, actor.username, "cycle.plan", "cycle", cycle.id,
                     {"program": program_code, "period": period,
                      "instructions_created": result.instructions_created,
                      "amount_centimes": result.amount_centimes,
                      "fee_centimes": result.fee_centimes,
                      "batches": result.batches_created, "unroutable": result.unroutable,
                      "held_by_wallet_rules": result.held_by_wallet_rules})
        session.commit()
        return result


def _get_or_create_cycle(session: Session, program: str, period: str, actor: Actor) -> Cycle:
    insert_ignore(session, Cycle.__table__,
                  [{"program": program, "period": period, "planned_by": actor.username,
                    "created_at": utcnow()}], key=["program", "period"])
    return session.execute(select(Cycle).where(Cycle.program == program, Cycle.period == period)
                           ).scalar_one()


def _new_eligible(session: Session, rules: ProgramRules, program: str, period: str):
    """Eligible households without an instruction, in keyset-paginated steps.
    Those already planned are dropped with one lookup per step on the unique
    (program, period, household) index, not an anti-join over the whole cycle."""
    stmt = (select(Household.id, Household.region_code, Household.province_code,
                   Household.commune_code, Household.channel, Household.partner_code,
                   Household.children_0_5, Household.children_schooled_6_20,
                   Household.children_unschooled_6_20, Household.disabled_children,
                   Household.orphan, Household.flat_rate, Household.wallet_tier,
                   # Sealed personal data only where a rule reads it (the wallet number).
                   case((Household.channel == WALLET, Household.pii), else_=None).label("pii"))
            .where(Household.score_micro <= rules.score_max_micro,
                   Household.suspended.is_(False))
            .order_by(Household.id).limit(HOUSEHOLDS_PER_STEP))
    last_id = 0
    while True:
        rows = session.execute(stmt.where(Household.id > last_id)).all()
        if not rows:
            return
        last_id = rows[-1].id
        planned = set(session.execute(select(PaymentInstruction.household_pk).where(
            PaymentInstruction.program == program, PaymentInstruction.period == period,
            PaymentInstruction.household_pk.in_([r.id for r in rows]))).scalars())
        fresh = [r for r in rows if r.id not in planned]
        if fresh:
            yield fresh


class _Planner:
    def __init__(self, svc: Services, session: Session, rules: ProgramRules, year: int,
                 cycle: Cycle, actor: Actor, result: PlanResult) -> None:
        self.svc, self.session, self.rules, self.year = svc, session, rules, year
        self.cycle, self.actor, self.result = cycle, actor, result
        self.open: dict[str, _OpenBatch] = {}
        self.next_seq = dict(session.execute(
            select(Batch.partner_code, func.max(Batch.seq)).where(Batch.cycle_id == cycle.id)
            .group_by(Batch.partner_code)).all())
        self.entitle = lru_cache(maxsize=4096)(lambda comp: rules.entitlement(year, comp))
        # Capacity counters live in the router for the whole run: no per-row query.
        self.window = routing.pickup_window(result.period, rules.pickup_window_days)
        self.router = routing.build_router(svc, session, rules, cycle.id, self.window)
        self.explanations = routing.ExplanationStore(session)

    def add(self, households) -> None:
        now = utcnow()
        decided = []
        for h in households:
            ent = self.entitle(Composition(h.children_0_5, h.children_schooled_6_20,
                                           h.children_unschooled_6_20, h.disabled_children,
                                           bool(h.orphan), bool(h.flat_rate)))
            decision = self._held(h, ent.amount_centimes) or self.router.route(Request(
                h.region_code, h.province_code, h.commune_code, h.channel, h.partner_code,
                ent.amount_centimes))
            decided.append((h, ent, decision))
        explanation_ids = self.explanations.ids([d.steps for _, _, d in decided])
        ids = reserve_ids(self.session, PaymentInstruction.__table__, len(households))
        instructions, plans = [], []
        for instruction_id, (h, ent, d), explanation_id in zip(ids, decided, explanation_ids,
                                                                  strict=True):
            instructions.append((
                instruction_id, self.cycle.id, self.rules.code, self.result.period, h.id,
                ent.amount_centimes, self.rules.currency,
                [[line.code, line.amount_centimes] for line in ent.lines],
                d.partner_code, d.reason[:200], explanation_id, now))
            plans.append((instruction_id, h.channel, d, ent.amount_centimes))
        write_rows(self.session, PaymentInstruction.__table__, INSTRUCTION_COLUMNS, instructions,
                   json_columns=["lines"])
        self.result.eligible_new += len(instructions)
        self.result.instructions_created += len(instructions)
        routed = [(iid, channel, d, d.partner_code, amount) for iid, channel, d, amount in plans
                  if d.partner_code is not None]
        self.result.unroutable += len(plans) - len(routed)
        transfer_ids = reserve_ids(self.session, Transfer.__table__, len(routed))
        transfers, events = [], []
        for transfer_id, (instruction_id, channel, d, partner_code, amount) in zip(
                transfer_ids, routed, strict=True):
            batch = self._batch_for(partner_code)
            chunk_no = batch.count // self.svc.settings.chunk_size
            batch.count += 1
            batch.total += amount
            batch.fees += d.fee_centimes
            self.result.amount_centimes += amount
            self.result.fee_centimes += d.fee_centimes
            pickup = (self.window[d.pickup_day] if channel == "cash" and d.pickup_day is not None
                      else None)
            transfers.append((transfer_id, instruction_id, batch.id, new_reference(), 1,
                              d.partner_code, channel, amount, self.rules.currency,
                              d.fee_centimes, d.service_point, pickup,
                              TransferStatus.PENDING_APPROVAL.value, chunk_no, now))
            events.append((transfer_id, now, None, TransferStatus.PENDING_APPROVAL.value,
                           "officer", self.actor.username, "planned"))
        write_rows(self.session, Transfer.__table__, TRANSFER_COLUMNS, transfers)
        write_rows(self.session, TransferEvent.__table__, EVENT_COLUMNS, events)

    def _held(self, h, amount_centimes: int) -> Decision | None:
        """The decision to hold a wallet household the wallet would refuse, or None."""
        if h.channel != WALLET:
            return None
        refusal = self.svc.configuration.wallet.refusal(
            amount_centimes, self.rules.currency, wallet_number(self.svc.vault.open(h.pii)),
            h.wallet_tier)
        if refusal is None:
            return None
        self.result.held_by_wallet_rules += 1
        return Decision(None, HELD_BY_WALLET_RULES + refusal,
                        (f"wallet rules: {refusal}; held for an officer, not routed",))

    def _batch_for(self, partner_code: str) -> _OpenBatch:
        batch = self.open.get(partner_code)
        if batch is not None and batch.count < self.svc.settings.batch_size:
            return batch
        if batch is not None:
            self._close(batch)
        seq = self.next_seq.get(partner_code, 0) + 1
        self.next_seq[partner_code] = seq
        row = Batch(cycle_id=self.cycle.id, partner_code=partner_code, seq=seq,
                    status=BatchStatus.DRAFT.value, transfer_count=0, total_centimes=0,
                    fee_total_centimes=0, currency=self.rules.currency, approvals_required=1,
                    created_by=self.actor.username)
        self.session.add(row)
        self.session.flush()
        self.result.batches_created.append(row.id)
        self.open[partner_code] = batch = _OpenBatch(row.id)
        return batch

    def _close(self, batch: _OpenBatch) -> None:
        threshold = self.svc.settings.second_approval_above_centimes
        self.session.execute(update(Batch).where(Batch.id == batch.id).values(
            transfer_count=batch.count, total_centimes=batch.total, fee_total_centimes=batch.fees,
            approvals_required=2 if batch.total > threshold else 1))

    def close_batches(self) -> None:
        for batch in self.open.values():
            self._close(batch)
        self.open.clear()
