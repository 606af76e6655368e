"""`disburse ledger check` holds the partners' books (what each partner last
said of a transfer, what its statements say) and our ledger against our
transfer states, transfer by transfer (issue 10): each kind of disagreement is
counted per partner and named by reference, exit 4 through the real CLI, and
the scrape-time gauge says the same. On PostgreSQL and on the embedded SQLite.

What the partner last said (`partner_status`) is written straight into the
table in the setup: the inbound path does not record it yet on this branch.
Everything else goes through the real services: confirmations, statements,
the state machine's moves, the ledger's postings, an officer's write-off."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alembic import command
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from disbursement.db.migrate import alembic_config, upgrade
from disbursement.db.models import LedgerPosting, Transfer, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.books import Disagreement
from disbursement.domain.states import TransferStatus as S
from disbursement.services.ledger import postings as ledger
from disbursement.services.tracking import confirmations
from disbursement.web.app import create_app
from reconciliation import exceptions, reconcile
from tests.conftest import PASSWORD, create_officers
from tests.support.cli import run_cli
from tests.support.console import Officer, console_app
from tests.support.recon_world import build_world, csv_statement

pytestmark = pytest.mark.integration
PARTNER = "BARID"
SLA_PASSED = timedelta(days=4)   # BARID's statement SLA is 3 days


@pytest.fixture
def world(svc, officers, households_csv, redis_url):
    built = build_world(svc, officers, households_csv, redis_url)
    assert len(built.refs[PARTNER]) >= 9
    return built


def _confirm(world, refs: list[str], status: str) -> None:
    confirmations.apply(world.svc, PARTNER, [
        {"event_id": None, "reference": r, "status": status, "occurred_at": None, "reason": None,
         "service_point": None} for r in refs])


def _partner_says(world, refs: list[str], status: str) -> None:
    """What the partner last said, as the inbound path will record it."""
    with world.svc.uow() as session:
        session.execute(update(Transfer).where(Transfer.reference.in_(refs))
                        .values(partner_status=status, partner_status_at=utcnow()))
        session.commit()


def _statement(world, officers, refs: list[str], name: str, extra: tuple = ()) -> None:
    lines = [(r, world.transfer(r).amount_centimes) for r in refs] + list(extra)
    reconcile.reconcile(world.svc, PARTNER, csv_statement(lines), name, officers.maker)


def _books(svc, now=None):
    with svc.uow() as session:
        return ledger.check(session, now=now).books


def _scraped(svc) -> dict[tuple[str, str], float]:
    body = create_app(services=svc).test_client().get("/metrics").get_data(as_text=True)
    return {(s.labels["partner"], s.labels["kind"]): s.value
            for family in text_string_to_metric_families(body)
            if family.name == "disburse_books_disagreements" for s in family.samples}


def test_each_disagreement_is_counted_and_named_then_settled(world, officers, tmp_path):
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(world, r[:2], "paid")
    _partner_says(world, r[:2], "paid")
    _statement(world, officers, r[:2], "s1.csv")
    assert _books(svc).agree and _books(svc, utcnow() + SLA_PASSED).agree
    clean = run_cli(svc, tmp_path, "ledger", "check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "partners' books: agree" in clean.stdout
    assert set(_scraped(svc).values()) == {0}

    # A crash left r2, r3 queued although the partner paid them (its confirmations
    # were recorded); r4 was cancelled here, and the partner's statement says it paid.
    # (A queued transfer on a statement is taken to paid by the statement itself.)
    world.move(r[2:4], S.UNKNOWN, S.QUEUED)
    world.move([r[4]], S.CANCELLED)
    _partner_says(world, r[2:4], "paid")
    # r5 paid here, the partner now says it never received it; r6 paid here
    # and left out of the next statement.
    _confirm(world, r[5:7], "paid")
    _partner_says(world, [r[5]], "not_found")
    _statement(world, officers, [r[4], r[5]], "s2.csv")
    # r7 moved to paid without a payment posting; r8 posted paid while sent.
    world.move([r[7]], S.PAID)
    with svc.uow() as session:
        ledger.post_payments(session, [world.transfer(r[8]).id], "a stray payment")
        session.commit()

    expected = {Disagreement.PAID_AT_PARTNER_NOT_HERE: [r[2], r[3]],
                Disagreement.ON_STATEMENT_NOT_PAID_HERE: [r[4]],
                Disagreement.PAID_HERE_PARTNER_SAYS_NOT: [r[5]],
                Disagreement.PAID_WITHOUT_PAYMENT_POSTING: [r[7]],
                Disagreement.PAYMENT_POSTING_NOT_PAID: [r[8]]}
    # r6 is missing from a statement, but within the partner's SLA: not yet a disagreement.
    within_sla = _books(svc)
    assert within_sla.first == expected
    assert within_sla.counts == {PARTNER: {k.value: len(v) for k, v in expected.items()}}
    past_sla = _books(svc, utcnow() + SLA_PASSED)
    assert past_sla.first == {**expected, Disagreement.PAID_HERE_MISSING_FROM_STATEMENT: [r[6]]}

    scraped = _scraped(svc)
    assert {k: v for k, v in scraped.items() if v} == {
        (PARTNER, k.value): len(v) for k, v in expected.items()}
    assert {kind for partner, kind in scraped if partner == "CASHPLUS"} == {
        k.value for k in Disagreement}

    bad = run_cli(svc, tmp_path, "ledger", "check", "--first", "1")
    assert bad.returncode == 4, bad.stdout + bad.stderr
    assert "partners' books: DISAGREE" in bad.stdout
    assert f"{PARTNER:<10} paid_at_partner_not_here: 2" in bad.stdout
    assert f"paid_at_partner_not_here: {r[2]} (and 1 more)" in bad.stdout
    for kind in (Disagreement.ON_STATEMENT_NOT_PAID_HERE, Disagreement.PAYMENT_POSTING_NOT_PAID):
        assert f"{kind}: {expected[kind][0]}\n" in bad.stdout
    as_json = run_cli(svc, tmp_path, "ledger", "check", "--json")
    assert as_json.returncode == 4
    books = json.loads(as_json.stdout)["books"]
    assert books["agree"] is False
    assert books["first_references"] == {k.value: v for k, v in expected.items()}
    assert books["by_kind"][Disagreement.PAID_HERE_MISSING_FROM_STATEMENT] == 0

    # Settled: the partner's truth moves r2, r3 along (with their payment); an
    # officer writes r4's statement exception off; r5's partner finds it paid.
    world.move(r[2:4], S.SENT, S.PAID)
    with svc.uow() as session:
        ledger.post_payments(session, [world.transfer(x).id for x in r[2:4]], "paid, late")
        session.commit()
    with svc.uow() as session:
        r4_exception = session.execute(select(ReconException.id).where(
            ReconException.reference == r[4])).scalar_one()
    exceptions.resolve(svc, r4_exception, officers.approver, "write_off", "paid by the partner")
    _partner_says(world, [r[5]], "paid")
    assert _books(svc).first == {Disagreement.PAID_WITHOUT_PAYMENT_POSTING: [r[7]],
                                 Disagreement.PAYMENT_POSTING_NOT_PAID: [r[8]]}


def test_a_statement_not_yet_covering_a_payment_proves_nothing(world, officers):
    """A payment made after the statement was read is not "missing" from it,
    however long ago: only a statement that should have carried it counts."""
    svc, r = world.svc, world.refs[PARTNER]
    # Statements carrying none of ours (a line the partner got wrong each).
    _statement(world, officers, [], "before.csv", [("XNOTOURS0000001", 100)])
    _confirm(world, [r[0]], "paid")
    assert _books(svc, utcnow() + SLA_PASSED * 10).agree
    _statement(world, officers, [], "after.csv", [("XNOTOURS0000002", 100)])
    assert _books(svc, utcnow() + SLA_PASSED).first == {
        Disagreement.PAID_HERE_MISSING_FROM_STATEMENT: [r[0]]}
    # Carried by a later statement: settled.
    _statement(world, officers, [r[0]], "late.csv")
    assert _books(svc, utcnow() + SLA_PASSED).agree


def test_check_is_scoped_to_a_cycle(world, officers):
    svc, r = world.svc, world.refs[PARTNER]
    world.move([r[0]], S.PAID)
    with svc.uow() as session:
        assert ledger.check(session, "asd", "2026-12").books.first == {
            Disagreement.PAID_WITHOUT_PAYMENT_POSTING: [r[0]]}
        assert ledger.check(session, "asd", "2027-01").books.agree


def _migrate(svc, direction: str, revision: str) -> None:
    cfg = alembic_config(svc.settings.database_url)
    with svc.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


def test_upgrade_links_earlier_payments_only_where_the_ledger_agreed(pg_svc, households_csv,
                                                                     redis_url):
    """Transfers paid before migration 0008 get the last payment posting of
    their cycle and partner where the ledger's paid figure equals theirs; where
    it does not, they stay unlinked and the check names them."""
    officers = create_officers(pg_svc)
    world = build_world(pg_svc, officers, households_csv, redis_url)
    barid, cashplus = world.refs[PARTNER][:3], world.refs["CASHPLUS"][:2]
    _confirm(world, barid[:2], "paid")
    _confirm(world, [barid[2]], "paid")
    confirmations.apply(pg_svc, "CASHPLUS", [
        {"event_id": None, "reference": r, "status": "paid", "occurred_at": None,
         "reason": None, "service_point": None} for r in cashplus])
    with pg_svc.uow() as session:   # CASHPLUS's ledger says more was paid than its transfers
        ledger.post(session, "payment", "asd", "2026-12", "CASHPLUS", "stray",
                    [("paid:asd", 100), ("clearing:CASHPLUS", -100)])
        session.commit()
    _migrate(pg_svc, "downgrade", "0007")
    try:
        _migrate(pg_svc, "upgrade", "0008")
    finally:
        upgrade(pg_svc.engine)
    with pg_svc.uow() as session:
        last_barid = session.execute(select(func.max(LedgerPosting.id)).where(
            LedgerPosting.kind == "payment", LedgerPosting.partner_code == PARTNER)).scalar_one()
        linked = dict(session.execute(select(Transfer.reference, Transfer.payment_posting_id)
                                      .where(Transfer.status == S.PAID.value)).all())
    assert linked == {**dict.fromkeys(barid, last_barid), **dict.fromkeys(cashplus)}
    assert _books(pg_svc).first == {Disagreement.PAID_WITHOUT_PAYMENT_POSTING: cashplus}


def test_the_reports_page_shows_the_disagreements(pg_svc, households_csv, redis_url):
    officers = create_officers(pg_svc)
    world = build_world(pg_svc, officers, households_csv, redis_url)
    r = world.refs[PARTNER]
    reader = Officer(console_app(pg_svc))
    assert reader.login("maker", PASSWORD).status_code == 303
    page = reader.get("/console/reports").get_data(as_text=True)
    assert "The partners' books agree with ours." in page
    world.move(r[:2], S.UNKNOWN, S.QUEUED)
    _partner_says(world, r[:2], "paid")
    page = reader.get("/console/reports").get_data(as_text=True)
    row = page[page.index(f'data-partner="{PARTNER}" '
                          'data-disagreement="paid_at_partner_not_here"'):]
    assert row.index(f'<td class="num">2</td><td><code>{r[0]} {r[1]}</code>') < row.index("</tr>")
