"""A released cycle for the reconciliation tests, made through the real
services: registry import, planning, maker-checker, release. The dispatch jobs
the release writes are parked on a real Redis queue that no worker serves, so
the tests move `queued -> sent` themselves the way dispatch does, and no
partner is called."""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from datetime import date

from redis import Redis
from sqlalchemy import func, select

from disbursement.bootstrap import Services
from disbursement.db.models import Transfer
from disbursement.db.models.ledger import FundReturn
from disbursement.domain.states import RELEASED
from disbursement.domain.states import TransferStatus as S
from disbursement.jobs.queue import QUEUE_NAME, RQJobQueue
from disbursement.services.batches import approval as batches
from disbursement.services.ledger import postings as ledger
from disbursement.services.tracking import transitions
from tests.support.cycle import approve, import_and_plan

PROGRAM, PERIOD = "asd", "2026-12"


@dataclass
class World:
    svc: Services
    refs: dict[str, list[str]]    # partner -> references, in order

    def status(self, reference: str) -> str:
        with self.svc.uow() as session:
            return session.execute(select(Transfer.status)
                                   .where(Transfer.reference == reference)).scalar_one()

    def transfer(self, reference: str) -> Transfer:
        with self.svc.uow() as session:
            return session.execute(
                select(Transfer).where(Transfer.reference == reference)).scalar_one()

    def move(self, references: list[str], *targets: S) -> None:
        """Walks the transfers through `targets` with the state machine's own
        conditional updates (the partner's or an officer's doing)."""
        with self.svc.uow() as session:
            ids = list(session.execute(select(Transfer.id)
                                       .where(Transfer.reference.in_(references))).scalars())
            assert len(ids) == len(set(references)), "a reference names no transfer"
            for target in targets:
                assert len(transitions.move(session, ids, target, source="partner",
                                            actor="test")) == len(ids), target
            session.commit()


def build_world(svc: Services, officers, households_csv, redis_url: str, households: int = 60,
                seed: int = 7, prefund: dict[str, int] | None = None) -> World:
    parked = RQJobQueue(redis_url)
    parked.connection.delete(f"rq:queue:{QUEUE_NAME}")
    released_svc = dataclasses.replace(svc, _queue=parked)
    plan = import_and_plan(svc, officers, households_csv(households, seed=seed))
    with svc.uow() as session:
        for partner, amount in (prefund or {}).items():
            ledger.post_prefunding(session, PROGRAM, PERIOD, partner, amount)
        session.commit()
    for batch_id in plan.batches_created:
        approve(svc, officers, batch_id)
        batches.release(released_svc, batch_id, officers.maker)
    Redis.from_url(redis_url).delete(f"rq:queue:{QUEUE_NAME}")
    refs: dict[str, list[str]] = {}
    with svc.uow() as session:
        for partner, ids in _ids_by_partner(session).items():
            transitions.move(session, ids, S.SENT, source="dispatch", actor=partner)
        session.commit()
        for partner, reference in session.execute(select(Transfer.partner_code, Transfer.reference)
                                                   .order_by(Transfer.id)):
            refs.setdefault(partner, []).append(reference)
    return World(svc, refs)


def _ids_by_partner(session) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for partner, tid in session.execute(select(Transfer.partner_code, Transfer.id)
                                        .where(Transfer.status == S.QUEUED.value)):
        out.setdefault(partner, []).append(tid)
    return out


def csv_statement(rows: list[tuple], value_date: date = date(2026, 12, 5)) -> io.BytesIO:
    """rows: (reference, amount_centimes[, currency[, status]])."""
    lines = ["reference,amount_centimes,currency,status,value_date,service_point"]
    for row in rows:
        reference, amount, currency, status = _fields(*row)
        lines.append(f"{reference},{amount},{currency},{status},{value_date.isoformat()},SP-0001")
    lines.append(f"TRAILER,{len(rows)},{sum(r[1] for r in rows)}")
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def _fields(reference: str, amount: int, currency: str = "MAD", status: str = "paid") -> tuple:
    return reference, amount, currency, status


def truth(session) -> dict[tuple[str, str], dict[str, int]]:
    """The conservation figures computed straight from the transfers, without
    the ledger: (period, partner) -> released, paid, returned."""
    released_states = [s.value for s in RELEASED]
    out: dict[tuple[str, str], dict[str, int]] = {}
    for partner, status, amount, returned in session.execute(
            select(Transfer.partner_code, Transfer.status, func.sum(Transfer.amount_centimes),
                   func.sum(FundReturn.amount_centimes))
            .outerjoin(FundReturn, FundReturn.transfer_id == Transfer.id)
            .where(Transfer.status.in_(released_states))
            .group_by(Transfer.partner_code, Transfer.status)):
        figures = out.setdefault((PERIOD, partner), {"released": 0, "paid": 0, "returned": 0})
        figures["released"] += int(amount)
        figures["paid"] += int(amount) if status == S.PAID.value else 0
        figures["returned"] += int(returned or 0)
    return out
