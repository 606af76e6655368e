"""The ledger on real PostgreSQL: over random sequences of partner
confirmations, cancellations, expiries, returns, statements and officers'
corrections, every posting balances and, per cycle and partner,
released = paid + returned + outstanding + corrections to the centime, with
released, paid and returned equal to what the transfers themselves say. And
the database itself refuses an unbalanced posting and any change to one."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from disbursement.db.models import LedgerPosting, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.books import Disagreement
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import users
from disbursement.services.tracking import confirmations
from reconciliation import exceptions, expiry, reconcile, returns
from tests.conftest import _truncate_all, create_officers
from tests.support.recon_world import PERIOD, PROGRAM, build_world, csv_statement, truth

pytestmark = pytest.mark.integration

LEDGER_KINDS = {Disagreement.PAID_WITHOUT_PAYMENT_POSTING, Disagreement.PAYMENT_POSTING_NOT_PAID}
OPS = ["available", "paid", "rejected", "expired", "cancelled", "expiry_job", "return",
       "statement", "write_off", "correction"]
STEPS = st.lists(st.tuples(st.sampled_from(OPS), st.lists(st.integers(0, 200), min_size=1,
                                                          max_size=6),
                           st.integers(-50_000, 50_000).filter(bool)), min_size=1, max_size=8)


def _confirm(svc, world, refs: list[str], status: str) -> None:
    for partner, group in _by_partner(world, refs).items():
        confirmations.apply(svc, partner, [
            {"event_id": None, "reference": r, "status": status, "occurred_at": None,
             "reason": None, "service_point": None} for r in group])


def _by_partner(world, refs: list[str]) -> dict[str, list[str]]:
    owner = {ref: partner for partner, partner_refs in world.refs.items() for ref in partner_refs}
    out: dict[str, list[str]] = {}
    for ref in dict.fromkeys(refs):
        out.setdefault(owner[ref], []).append(ref)
    return out


def _resolve_one(svc, officers, kind: str, amount: int) -> None:
    with svc.uow() as session:
        row = session.execute(select(ReconException.id).where(
            ReconException.status.in_(["open", "expected"]), ReconException.program.is_not(None))
            .order_by(ReconException.id).limit(1)).scalar_one_or_none()
    if row is not None:
        exceptions.resolve(svc, row, officers.approver, kind, "property test",
                           amount_centimes=amount)


def _apply(svc, world, officers, op: str, refs: list[str], amount: int, step: int) -> None:
    if op in ("available", "paid", "rejected", "expired", "cancelled"):
        _confirm(svc, world, refs, op)
    elif op == "expiry_job":
        expiry.run(svc, users.SYSTEM, utcnow().date() + timedelta(days=31))
    elif op == "return":
        for partner, group in _by_partner(world, refs).items():
            returns.apply_partner_returns(svc, partner, [
                {"event_id": None, "reference": r, "reason_code": "MD06"} for r in group])
    elif op == "statement":
        for partner, group in _by_partner(world, refs).items():
            lines = [(r, world.transfer(r).amount_centimes + (amount if i == 0 else 0))
                     for i, r in enumerate(group)]
            lines.append((group[-1], world.transfer(group[-1]).amount_centimes, "MAD", "returned"))
            reconcile.reconcile(svc, partner, csv_statement(lines), f"s{step}.csv", officers.maker)
    else:
        _resolve_one(svc, officers, "write_off" if op == "write_off" else "correction_posting",
                     amount)


def _assert_conserved(svc) -> None:
    with svc.uow() as session:
        report = ledger.check(session)
        expected = truth(session)
    # The partners may disagree with us (a statement saying paid what we hold
    # rejected): the books check names that; our own ledger never disagrees
    # with our own states, transfer by transfer.
    assert all(c.balanced for c in report.cycles), [(c.partner, c.differences)
                                                     for c in report.cycles]
    assert not report.unbalanced_postings
    ours = {k: n for k, n in report.books.by_kind().items() if k in LEDGER_KINDS}
    assert not any(ours.values()), (ours, report.books.first)
    # Every cycle with money released is in the report, so the loop below sees it.
    assert set(expected) <= {(c.period, c.partner) for c in report.cycles}
    for c in report.cycles:
        assert c.released == c.paid + c.returned + c.outstanding + c.corrections
        assert {"released": c.released, "paid": c.paid, "returned": c.returned} == \
            expected.get((c.period, c.partner), {"released": 0, "paid": 0, "returned": 0})


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_ledger_balances_and_conserves_money_over_any_sequence(pg_svc, households_csv,
                                                                redis_url, steps):
    _truncate_all(pg_svc)
    officers = create_officers(pg_svc)
    world = build_world(pg_svc, officers, households_csv, redis_url, households=30)
    every = [ref for partner in sorted(world.refs) for ref in world.refs[partner]]
    _assert_conserved(pg_svc)
    for number, (op, picks, amount) in enumerate(steps):
        refs = [every[p % len(every)] for p in picks]
        _apply(pg_svc, world, officers, op, refs, amount, number)
        _assert_conserved(pg_svc)


# --- the database's own rules ---------------------------------------------------

def _raw(svc, *statements: str) -> None:
    with svc.engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
        conn.commit()


def test_database_refuses_an_unbalanced_posting_at_commit(pg_svc):
    insert_posting = ("INSERT INTO ledger_postings "
                      "(id, kind, program, period, partner_code, memo, at) "
                      "VALUES (9001, 'release', 'asd', '2026-12', 'BARID', 'forged', now())")
    with pytest.raises(DBAPIError, match="unbalanced ledger posting 9001: MAD legs sum to 100"):
        _raw(pg_svc, insert_posting,
             "INSERT INTO ledger_lines (posting_id, account, amount_centimes, currency) "
             "VALUES (9001, 'clearing:BARID', 100, 'MAD')")
    with pg_svc.uow() as session:
        assert session.execute(select(LedgerPosting)).first() is None
        # Balanced legs written one by one pass: the check waits for the commit.
        session.execute(text(insert_posting))
        session.execute(text("INSERT INTO ledger_lines "
                             "(posting_id, account, amount_centimes, currency) "
                             "VALUES (9001, 'clearing:BARID', 100, 'MAD')"))
        session.execute(text("INSERT INTO ledger_lines "
                             "(posting_id, account, amount_centimes, currency) "
                             "VALUES (9001, 'budget:asd', -100, 'MAD')"))
        ledger.commit(session)


def test_balance_rule_is_per_currency(pg_svc):
    with pg_svc.uow() as session:
        session.execute(text("INSERT INTO ledger_postings "
                             "(id, kind, program, period, partner_code, memo, at) "
                             "VALUES (9002, 'release', 'asd', '2026-12', 'BARID', 'x', now())"))
        session.execute(text("INSERT INTO ledger_lines "
                             "(posting_id, account, amount_centimes, currency) "
                             "VALUES (9002, 'clearing:BARID', 100, 'MAD'), "
                             "(9002, 'budget:asd', -100, 'EUR')"))
        with pytest.raises(ledger.UnbalancedPosting, match="unbalanced ledger posting 9002"):
            ledger.commit(session)


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_lines SET amount_centimes = amount_centimes * 2",
    "DELETE FROM ledger_lines",
    "UPDATE ledger_postings SET memo = 'edited'",
    "DELETE FROM ledger_postings"])
def test_database_refuses_to_change_a_posting(pg_svc, statement):
    with pg_svc.uow() as session:
        ledger.post_prefunding(session, PROGRAM, PERIOD, "BARID", 12_345)
        session.commit()
    with pg_svc.uow() as session, \
            pytest.raises(DBAPIError, match="rows are never changed") as refused:
        session.execute(text(statement))
    assert isinstance(ledger.refusal(refused.value), ledger.PostingIsImmutable)
    with pg_svc.uow() as session:
        assert ledger.balance(session, "prefunding:BARID") == 12_345


def test_the_application_refuses_an_unbalanced_posting_and_an_unknown_account(pg_svc):
    with pg_svc.uow() as session:
        with pytest.raises(ledger.UnbalancedPosting, match="legs sum to 1"):
            ledger.post(session, "correction", PROGRAM, PERIOD, "BARID", "x",
                        [("corrections:asd", 2), ("clearing:BARID", -1)])
        with pytest.raises(ledger.UnknownAccount, match="'petty-cash:asd' is not in the chart"):
            ledger.post(session, "correction", PROGRAM, PERIOD, "BARID", "x",
                        [("petty-cash:asd", 1), ("clearing:BARID", -1)])


def test_release_draws_on_the_partners_prefunding_first(pg_svc, households_csv, redis_url):
    officers = create_officers(pg_svc)
    world = build_world(pg_svc, officers, households_csv, redis_url, prefund={"BARID": 100_000})
    with pg_svc.uow() as session:
        release = session.execute(select(LedgerPosting.id).where(
            LedgerPosting.kind == "release", LedgerPosting.partner_code == "BARID")).scalar_one()
        legs = dict(session.execute(text(
            "SELECT account, amount_centimes FROM ledger_lines WHERE posting_id = :p"),
            {"p": release}).all())
        assert ledger.balance(session, "prefunding:BARID") == 0
        report = ledger.check(session)
    released = sum(world.transfer(r).amount_centimes for r in world.refs["BARID"])
    assert legs == {"clearing:BARID": released, "prefunding:BARID": -100_000,
                    "budget:asd": -(released - 100_000)}
    assert report.balanced
