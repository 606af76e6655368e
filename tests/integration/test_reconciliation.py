"""Reconciliation of a CSV statement, on PostgreSQL and on SQLite: each
outcome of the matcher met through the real services, the exceptions it
opens, the payments it confirms and the returns it books, expected items that
age and close when a later statement carries them, and the same file twice
changing nothing. The ledger balances after each step."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from disbursement.db.models import LedgerLine, ReconItem, Statement, Transfer, utcnow
from disbursement.db.models.ledger import Arrears, FundReturn, ReconException
from disbursement.domain.statements import StatementError
from disbursement.services.ledger import postings as ledger
from disbursement.services.tracking import confirmations
from reconciliation import exceptions, expiry, reconcile, returns
from tests.support.recon_world import build_world, csv_statement, truth

pytestmark = pytest.mark.integration
PARTNER = "BARID"


@pytest.fixture
def world(svc, officers, households_csv, redis_url):
    return build_world(svc, officers, households_csv, redis_url)


def _confirm(world, refs: list[str], status: str) -> None:
    confirmations.apply(world.svc, PARTNER, [
        {"event_id": None, "reference": r, "status": status, "occurred_at": None, "reason": None,
         "service_point": None} for r in refs])


def _balanced_and_true(svc, books_disagree: bool = False) -> None:
    """The ledger balances and agrees with the transfers; the partners' books
    agree with ours unless the test says they must not (statements that say
    paid what we hold cancelled, expired...: `test_partner_books`)."""
    with svc.uow() as session:
        report = ledger.check(session)
        assert not report.unbalanced_postings
        assert all(c.balanced for c in report.cycles), [c.differences for c in report.cycles]
        assert report.books.agree != books_disagree, report.books
        expected = truth(session)
    got = {(c.period, c.partner): {"released": c.released, "paid": c.paid, "returned": c.returned}
           for c in report.cycles}
    assert got == expected


def _items(svc, statement_id: int) -> list[tuple]:
    with svc.uow() as session:
        return session.execute(select(ReconItem.reference, ReconItem.outcome)
                               .where(ReconItem.statement_id == statement_id)
                               .order_by(ReconItem.id)).all()


def test_every_outcome_of_a_csv_statement(world, officers):
    svc, r = world.svc, world.refs[PARTNER]
    assert len(r) >= 14
    amount = {ref: world.transfer(ref).amount_centimes for ref in r}
    _confirm(world, [r[0], r[1], r[2], r[3], r[8], r[11]], "paid")
    _confirm(world, [r[4], r[5], r[6], r[10], r[12]], "available")
    _confirm(world, [r[4]], "cancelled")
    _confirm(world, [r[5], r[6], r[10]], "expired")
    _confirm(world, [r[7], r[13]], "rejected")
    assert returns.apply_partner_returns(svc, PARTNER, [
        {"event_id": "RET-1", "reference": r[6], "reason_code": "MD06"}]).returned == 1

    statement = csv_statement([
        (r[0], amount[r[0]]),                       # matched
        (r[0], amount[r[0]]),                       # duplicate line
        (r[1], amount[r[1]] + 100),                 # amount over
        (r[2], amount[r[2]] - 100),                 # amount under
        (r[3], amount[r[3]], "EUR"),                # currency mismatch
        ("XUNKNOWN0000001", 5000),                  # unknown reference
        (r[4], amount[r[4]]),                       # paid, cancelled here
        (r[5], amount[r[5]]),                       # paid, expired here
        (r[6], amount[r[6]]),                       # paid, returned here
        (r[7], amount[r[7]]),                       # paid, rejected here
        (r[9], amount[r[9]]),                       # paid, still sent here: confirms it
        (r[10], amount[r[10]], "MAD", "returned"),  # funds of an expired transfer back
        (r[11], amount[r[11]], "MAD", "returned"),  # reversal of a paid transfer
        (r[12], amount[r[12]], "MAD", "returned"),  # return of an available transfer
        (r[13], amount[r[13]], "MAD", "returned"),  # funds of a rejected attempt back
    ])                                               # r[8]: paid here, missing there
    report = reconcile.reconcile(svc, PARTNER, statement, "barid-1.csv", officers.maker)

    assert _items(svc, report.statement_id) == [
        (r[0], "matched"), (r[0], "duplicate_line"), (r[1], "amount_over"),
        (r[2], "amount_under"), (r[3], "currency_mismatch"),
        ("XUNKNOWN0000001", "unknown_reference"), (r[4], "paid_but_cancelled"),
        (r[5], "paid_but_expired"), (r[6], "paid_but_returned"),
        (r[7], "paid_in_statement_not_in_records"), (r[9], "matched"), (r[10], "returned"),
        (r[11], "return_of_paid"), (r[12], "return_not_allowed"), (r[13], "returned"),
        (r[8], "paid_in_records_missing_from_statement"),
        # The reversal of r[11] is on the statement, its payment is not.
        (r[11], "paid_in_records_missing_from_statement")]
    assert (report.confirmed_paid, report.returns_booked) == (1, 2)
    assert [world.status(x) for x in (r[9], r[10], r[11], r[12], r[13])] == [
        "paid", "returned", "paid", "available", "rejected"]
    with svc.uow() as session:
        opened = dict(session.execute(select(ReconException.reference,
                                             ReconException.amount_centimes)
                                      .where(ReconException.statement_id == report.statement_id))
                      .all())
        statuses = dict(session.execute(select(ReconException.type, ReconException.status)).all())
        arrears = session.execute(select(Arrears.transfer_id)).scalars().all()
        funds_back = session.execute(select(func.count()).select_from(FundReturn)).scalar_one()
    assert opened == {r[0]: amount[r[0]], r[1]: 100, r[2]: -100, r[3]: amount[r[3]],
                      "XUNKNOWN0000001": 5000, r[4]: amount[r[4]], r[5]: amount[r[5]],
                      r[6]: amount[r[6]], r[7]: amount[r[7]], r[11]: -amount[r[11]],
                      r[12]: -amount[r[12]], r[8]: -amount[r[8]]}
    with svc.uow() as session:
        assert session.execute(select(func.count()).select_from(ReconException).where(
            ReconException.reference == r[11])).scalar_one() == 2   # reversal + expected
    assert statuses["paid_in_records_missing_from_statement"] == "expected"
    assert statuses["amount_over"] == "open"
    assert sorted(arrears) == sorted([world.transfer(r[6]).id, world.transfer(r[10]).id])
    assert funds_back == 3
    _balanced_and_true(svc, books_disagree=True)
    with svc.uow() as session:   # paid at the partner; cancelled, expired, returned, rejected here
        named = ledger.check(session).books.first
    assert {k: set(v) for k, v in named.items()} == {
        "on_statement_not_paid_here": {r[4], r[5], r[6], r[7]}}


def test_expected_item_ages_escalates_after_the_sla_and_closes_on_a_later_statement(
        world, officers):
    svc, r = world.svc, world.refs[PARTNER]
    amount = {ref: world.transfer(ref).amount_centimes for ref in r[:3]}
    _confirm(world, r[:3], "paid")
    first = reconcile.reconcile(svc, PARTNER, csv_statement([(r[0], amount[r[0]])]), "s1.csv",
                                officers.maker)
    assert first.as_dict()["exceptions"]["paid_in_records_missing_from_statement"] == 2
    with svc.uow() as session:
        page, _ = exceptions.list_exceptions(session, status="expected",
                                             today=utcnow().date() + timedelta(days=40))
    assert [(e.reference, e.ageing_bucket, e.age_days) for e in page] == [
        (r[1], "31-60", 40), (r[2], "31-60", 40)]
    assert all(e.due_at.date() == e.since.date() + timedelta(days=3) for e in page)

    assert expiry.run(svc, officers.maker, utcnow().date() + timedelta(days=2)).escalated == 0
    assert expiry.run(svc, officers.maker, utcnow().date() + timedelta(days=5)).escalated == 2

    second = reconcile.reconcile(svc, PARTNER, csv_statement([(r[1], amount[r[1]])]), "s2.csv",
                                 officers.maker)
    assert _items(svc, second.statement_id) == [(r[1], "matched")]   # r[2] not expected twice
    assert second.expected_closed == 1
    with svc.uow() as session:
        rows = dict(session.execute(select(ReconException.reference,
                                           ReconException.resolution)).all())
        outcome = dict(session.execute(select(Transfer.reference, Transfer.recon_outcome)
                                       .where(Transfer.reference.in_(r[:3]))).all())
    assert rows == {r[1]: "matched_later", r[2]: None}
    assert outcome == {r[0]: "matched", r[1]: "matched",
                       r[2]: "paid_in_records_missing_from_statement"}
    third = reconcile.reconcile(svc, PARTNER,
                                csv_statement([(r[0], amount[r[0]])], date(2026, 12, 6)),
                                "s3.csv", officers.maker)
    assert _items(svc, third.statement_id) == [(r[0], "duplicate_line")]  # already reconciled
    _balanced_and_true(svc, books_disagree=True)
    with svc.uow() as session:   # r[2]: paid here, left out by the statements past the SLA
        assert ledger.check(session).books.first == {"paid_here_missing_from_statement": [r[2]]}


def test_the_same_statement_twice_changes_nothing(world, officers):
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(world, r[:2], "paid")
    body = csv_statement([(r[0], world.transfer(r[0]).amount_centimes), ("XNOPE", 10)]).getvalue()
    first = reconcile.reconcile(svc, PARTNER, io.BytesIO(body), "a.csv", officers.maker)

    def footprint():
        with svc.uow() as session:
            return tuple(session.execute(select(func.count()).select_from(t)).scalar_one()
                         for t in (Statement, ReconItem, ReconException, LedgerLine))

    before = footprint()
    again = reconcile.reconcile(svc, PARTNER, io.BytesIO(body), "b.csv", officers.maker)
    assert again.duplicate_of == first.statement_id
    assert footprint() == before


def test_a_bad_line_refuses_the_whole_statement(world, officers):
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(world, r[:1], "paid")
    body = csv_statement([(r[0], world.transfer(r[0]).amount_centimes)]).getvalue()
    broken = body.replace(b"2026-12-05", b"2026-13-05", 1)
    with pytest.raises(StatementError, match=r"^line 2: value_date '2026-13-05' is not YYYY-MM-DD"):
        reconcile.reconcile(svc, PARTNER, io.BytesIO(broken), "x.csv", officers.maker)
    with svc.uow() as session:
        assert session.execute(select(func.count()).select_from(Statement)).scalar_one() == 0
        assert session.execute(select(Transfer.recon_outcome)
                               .where(Transfer.reference == r[0])).scalar_one() is None


def test_unknown_format_is_refused_by_name(world, officers):
    with pytest.raises(StatementError, match="unknown statement format 'pdf'"):
        reconcile.reconcile(world.svc, PARTNER, csv_statement([]), "x.pdf", officers.maker, "pdf")
