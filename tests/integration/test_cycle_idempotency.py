"""Planning twice, releasing twice, replaying every confirmation twice: exactly
one instruction, one live transfer and one payment per household."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from disbursement.db.models import PaymentInstruction, Transfer
from disbursement.services.cycles import planning
from disbursement.services.registry import importing as registry

pytestmark = pytest.mark.integration


def _import(svc, path, actor):
    with path.open("rb") as stream:
        return registry.import_households(svc, stream, path.name, actor)


def test_planning_twice_creates_nothing_new(svc, officers, households_csv):
    _import(svc, households_csv(400), officers.maker)
    first = planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
    second = planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
    assert first.instructions_created > 0
    assert second.instructions_created == 0 and second.batches_created == []
    with svc.uow() as session:
        per_household = session.execute(text(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM payment_instructions "
            "GROUP BY program, period, household_pk) t")).scalar_one()
        assert per_household == 1
        assert session.execute(select(func.count()).select_from(PaymentInstruction)).scalar_one() \
            == first.instructions_created


def test_database_refuses_a_second_instruction(svc, officers, households_csv):
    """The unique constraint, not the planner, is the guarantee."""
    _import(svc, households_csv(20), officers.maker)
    planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
    with svc.uow() as session:
        row = session.execute(select(PaymentInstruction)).scalars().first()
        with pytest.raises(IntegrityError):
            session.execute(text(
                "INSERT INTO payment_instructions (cycle_id, program, period, household_pk, "
                "amount_centimes, currency, lines, route_reason, created_at) VALUES "
                "(:c, :p, :per, :h, 100, 'MAD', '[]', 'x', CURRENT_TIMESTAMP)"),
                {"c": row.cycle_id, "p": row.program, "per": row.period, "h": row.household_pk})


def test_database_refuses_two_live_attempts(svc, officers, households_csv):
    _import(svc, households_csv(20), officers.maker)
    planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
    with svc.uow() as session:
        t = session.execute(select(Transfer)).scalars().first()
        with pytest.raises(IntegrityError):
            session.execute(text(
                "INSERT INTO transfers (instruction_id, batch_id, reference, attempt, "
                "partner_code, channel, amount_centimes, currency, status, chunk_no, updated_at) "
                "VALUES (:i, :b, 'DSECONDATTEMPT1', 2, :p, 'cash', 100, 'MAD', 'queued', 0, "
                "CURRENT_TIMESTAMP)"),
                {"i": t.instruction_id, "b": t.batch_id, "p": t.partner_code})
