"""The console's exceptions queue and reports pages on real PostgreSQL: the
filters and keyset pages, an approver's audited resolution (a maker's and a
forged form's refused, changing nothing), report downloads that carry the
service's figures, and a bounded number of statements per page (no N+1)."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from disbursement.db.models import AuditEntry, LedgerLine, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.money import format_units
from disbursement.domain.states import Role
from disbursement.services.ledger import reports
from disbursement.services.officers import users
from disbursement.services.tracking import confirmations
from reconciliation import exceptions, reconcile
from tests.conftest import PASSWORD, create_officers
from tests.support.console import Officer, console_app
from tests.support.recon_world import build_world, csv_statement
from tests.support.statements import counted

pytestmark = pytest.mark.integration
PARTNER = "BARID"
ROW = re.compile(r'<tr data-exception="(\d+)">')
# users (who is signed in), the page of exceptions, the counts by type.
QUEUE_STATEMENTS = 3


class Console:
    """The console app with one signed-in client per officer."""

    def __init__(self, svc) -> None:
        self.svc, self.app, self.officers = svc, console_app(svc), {}

    def __getitem__(self, username: str) -> Officer:
        if username not in self.officers:
            officer = Officer(self.app)
            assert officer.login(username, PASSWORD).status_code == 303
            self.officers[username] = officer
        return self.officers[username]


@pytest.fixture
def queue(pg_svc, households_csv, redis_url) -> Console:
    """A reconciled statement with an amount over, two unknown references and
    two payments missing from it (as in the API's tests)."""
    officers = create_officers(pg_svc)
    world = build_world(pg_svc, officers, households_csv, redis_url)
    with pg_svc.uow() as session:
        users.create_user(session, users.SYSTEM, "auditor", PASSWORD, [Role.AUDITOR])
        session.commit()
    r = world.refs[PARTNER]
    confirmations.apply(pg_svc, PARTNER, [{"event_id": None, "reference": ref, "status": "paid",
                                           "occurred_at": None, "reason": None,
                                           "service_point": None} for ref in r[:3]])
    statement = csv_statement([(r[0], world.transfer(r[0]).amount_centimes + 250),
                               ("XNOTOURS0000001", 1234), ("XNOTOURS0000002", 99)])
    reconcile.reconcile(pg_svc, PARTNER, statement, "q.csv", officers.maker)
    return Console(pg_svc)


def _ids(page: str) -> list[int]:
    return [int(i) for i in ROW.findall(page)]


def _exception(svc, exception_id: int) -> ReconException:
    with svc.uow() as session:
        return session.get(ReconException, exception_id)


def _audit_rows(svc) -> int:
    with svc.uow() as session:
        return session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def _all(svc) -> list[exceptions.ExceptionView]:
    with svc.uow() as session:
        return exceptions.list_exceptions(session)[0]


def test_queue_filters_by_type_partner_status_and_age(queue):
    reader = queue["auditor"]
    everything = reader.get("/console/exceptions")
    assert everything.status_code == 200
    items = _all(queue.svc)
    assert _ids(everything.get_data(as_text=True)) == [e.id for e in items]
    assert len(items) == 5
    page = reader.get("/console/exceptions?type=unknown_reference").get_data(as_text=True)
    assert _ids(page) == [e.id for e in items if e.type == "unknown_reference"]
    assert "XNOTOURS0000001" in page and "XNOTOURS0000002" in page
    assert '<td class="num">13.33</td>' in page          # 12.34 + 0.99 in the counts
    assert _ids(reader.get("/console/exceptions?partner=CASHPLUS").get_data(as_text=True)) == []
    expected = reader.get(
        "/console/exceptions?status=expected&partner=BARID").get_data(as_text=True)
    assert _ids(expected) == [e.id for e in items if e.status == "expected"] != []

    # One exception opened 40 days ago: the only one aged 31-60 days.
    old = items[1].id
    with queue.svc.uow() as session:
        session.execute(update(ReconException).where(ReconException.id == old)
                        .values(since=utcnow() - timedelta(days=40)))
        session.commit()
    assert _ids(reader.get("/console/exceptions?age=31-60").get_data(as_text=True)) == [old]
    assert old not in _ids(reader.get("/console/exceptions?age=0-7").get_data(as_text=True))

    bad = reader.get("/console/exceptions?status=lost")
    assert bad.status_code == 422 and "unknown status &#39;lost&#39;" in bad.get_data(as_text=True)
    assert queue["monitor"].get("/console/exceptions").status_code == 403


def test_keyset_pages_cost_the_same_statements_whatever_the_page_size(queue):
    """150 more exceptions: two pages of PAGE_SIZE, followed by next links,
    and the full page costs as many statements as the one-row page."""
    now = utcnow()
    with queue.svc.uow() as session:
        session.execute(ReconException.__table__.insert(), [
            {"type": "unknown_reference", "status": "open", "partner_code": "CASHPLUS",
             "reference": f"XBULK{i:010d}", "amount_centimes": 100 + i, "currency": "MAD",
             "detail": "not ours", "since": now, "created_at": now} for i in range(150)])
        session.commit()
    reader = queue["maker"]
    with counted(queue.svc.engine) as one_row:
        single = reader.get("/console/exceptions?type=amount_over").get_data(as_text=True)
    assert len(_ids(single)) == 1 and 'id="next-page"' not in single
    seen: list[int] = []
    url = "/console/exceptions?partner=CASHPLUS"
    with counted(queue.svc.engine) as full_page:
        page = reader.get(url).get_data(as_text=True)
    while True:
        ids = _ids(page)
        assert ids == sorted(ids) and (not seen or ids[0] > seen[-1])
        seen += ids
        link = re.search(r'href="([^"]+)" id="next-page"', page)
        if not link:
            break
        assert len(ids) == exceptions.PAGE_SIZE
        url = link.group(1).replace("&amp;", "&")
        assert "partner=CASHPLUS" in url
        page = reader.get(url).get_data(as_text=True)
    assert len(seen) == len(set(seen)) == 150
    assert len(full_page) == len(one_row) <= QUEUE_STATEMENTS, "\n\n".join(full_page)


def test_an_approver_resolves_with_a_confirmation_and_the_service_audits_it(queue):
    over = next(e for e in _all(queue.svc) if e.type == "amount_over")
    approver = queue["approver"]
    page = approver.get(f"/console/exceptions/{over.id}").get_data(as_text=True)
    assert 'id="resolve-exception"' in page and 'id="exception-amount">2.50 MAD' in page
    wrong = approver.post(f"/console/exceptions/{over.id}/resolve",
                          {"kind": "write_off", "reason": "absorbed", "confirmation": "guess"})
    assert wrong.status_code == 403 and _exception(queue.svc, over.id).status == "open"

    done = approver.post(f"/console/exceptions/{over.id}/resolve",
                         {"kind": "write_off", "reason": "partner paid 2.50 over; absorbed",
                          "confirmation": PASSWORD})
    assert done.status_code == 303
    row = _exception(queue.svc, over.id)
    assert (row.status, row.resolution, row.resolved_by) == ("resolved", "write_off", "approver")
    with queue.svc.uow() as session:
        audited = session.execute(select(AuditEntry.actor, AuditEntry.object_id, AuditEntry.detail)
                                  .where(AuditEntry.action == "exception.write_off")).one()
        legs = session.execute(select(LedgerLine.account, LedgerLine.amount_centimes)
                               .where(LedgerLine.posting_id == row.posting_id)
                               .order_by(LedgerLine.account)).all()
    assert (audited.actor, audited.object_id) == ("approver", str(over.id))
    assert audited.detail["reason"] == "partner paid 2.50 over; absorbed"
    assert legs == [("clearing:BARID", -250), ("corrections:asd", 250)]
    shown = approver.get(f"/console/exceptions/{over.id}").get_data(as_text=True)
    assert "confirmed by password" in shown and 'id="resolve-refusal"' in shown
    again = approver.post(f"/console/exceptions/{over.id}/resolve",
                          {"kind": "chase_partner", "reason": "twice", "confirmation": PASSWORD})
    assert again.status_code == 409


def test_a_correction_takes_its_amount_in_mad_and_a_bad_amount_changes_nothing(queue):
    unknown = next(e for e in _all(queue.svc) if e.type == "unknown_reference")
    approver, path = queue["approver"], f"/console/exceptions/{unknown.id}/resolve"
    form = {"kind": "correction_posting", "reason": "partner fee", "program": "asd",
            "period": "2026-12", "confirmation": PASSWORD}
    assert 'name="program"' in approver.get(
        f"/console/exceptions/{unknown.id}").get_data(as_text=True)
    before = _audit_rows(queue.svc)
    bad = approver.post(path, {**form, "amount_mad": "12.345"})
    assert bad.status_code == 422 and "more than two decimals" in bad.get_data(as_text=True)
    assert _exception(queue.svc, unknown.id).status == "open" and _audit_rows(queue.svc) == before
    assert approver.post(path, {**form, "amount_mad": "-12.34"}).status_code == 303
    with queue.svc.uow() as session:
        posting = _exception(queue.svc, unknown.id).posting_id
        legs = dict(session.execute(select(LedgerLine.account, LedgerLine.amount_centimes)
                                    .where(LedgerLine.posting_id == posting)).all())
    assert legs == {"corrections:asd": -1234, "clearing:BARID": 1234}


def test_a_makers_resolve_is_refused_and_changes_nothing(queue):
    over = next(e for e in _all(queue.svc) if e.type == "amount_over")
    maker = queue["maker"]
    page = maker.get(f"/console/exceptions/{over.id}").get_data(as_text=True)  # and its token
    assert "resolving needs the approver role" in page and 'id="resolve-exception"' not in page
    before = _audit_rows(queue.svc)
    refused = maker.post(f"/console/exceptions/{over.id}/resolve",
                         {"kind": "write_off", "reason": "mine", "confirmation": PASSWORD})
    assert refused.status_code == 403
    row = _exception(queue.svc, over.id)
    assert (row.status, row.resolution, row.posting_id) == ("open", None, None)
    assert _audit_rows(queue.svc) == before


def test_a_resolve_without_the_csrf_token_is_refused_and_changes_nothing(queue):
    over = next(e for e in _all(queue.svc) if e.type == "amount_over")
    approver = queue["approver"]
    approver.get(f"/console/exceptions/{over.id}")
    before = _audit_rows(queue.svc)
    forged = approver.post(f"/console/exceptions/{over.id}/resolve",
                           {"kind": "write_off", "reason": "x", "confirmation": PASSWORD},
                           csrf=False)
    assert forged.status_code == 400
    assert "could not be trusted" in forged.get_data(as_text=True)
    assert _exception(queue.svc, over.id).status == "open" and _audit_rows(queue.svc) == before


def _service_cells(svc, kind: str, cycle_id: int | None) -> list[list[str]]:
    with svc.uow() as session:
        where = reports.scope(session, cycle_id)
        rows = reports.build(session, kind, where)
    return [reports.COLUMNS] + [[kind, r.key, r.section, r.category, str(r.count),
                                 format_units(r.amount_centimes), format_units(r.fee_centimes)]
                                for r in rows]


@pytest.mark.parametrize("kind", reports.KINDS)
def test_report_downloads_carry_the_service_figures(queue, kind):
    with queue.svc.uow() as session:
        cycle_id = reports.scope(session, program="asd", period="2026-12").cycle_id
    expected = _service_cells(queue.svc, kind, cycle_id)
    assert len(expected) > 3                       # states, exceptions and ageing
    reader = queue["auditor"]
    got = reader.get(f"/console/reports/{kind}.csv?cycle={cycle_id}")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert f"{kind}-report-asd-2026-12.csv" in got.headers["Content-Disposition"]
    assert list(csv.reader(io.StringIO(got.get_data(as_text=True)))) == expected
    # Straight from the client: the Officer helper reads every answer as text.
    book = reader.client.get(f"/console/reports/{kind}.xlsx?cycle={cycle_id}",
                             base_url="https://localhost")
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.get_data()), read_only=True).active
    assert [[str(c) for c in row] for row in sheet.iter_rows(values_only=True)] == expected

    page = reader.get(f"/console/reports?kind={kind}&cycle={cycle_id}").get_data(as_text=True)
    states = [r for r in expected[1:] if r[2] == "state"]
    transfers = sum(int(r[4]) for r in states)
    assert f'<th class="num">{transfers}</th>' in page
    for row in expected[1:]:
        assert f'data-key="{row[1]}" data-category="{row[3]}"' in page
    assert reader.get(f"/console/reports/{kind}.csv?cycle=999999").status_code == 404


def test_report_pages_refuse_unknown_kinds_and_monitors(queue):
    assert queue["auditor"].get("/console/reports/planet.csv").status_code == 404
    assert queue["auditor"].get("/console/reports?kind=planet").status_code == 404
    assert queue["auditor"].get("/console/reports/partner.pdf").status_code == 404
    assert queue["monitor"].get("/console/reports").status_code == 403
    assert queue["maker"].get("/console/reports").status_code == 200


def test_the_age_filter_agrees_with_each_exceptions_ageing_bucket_at_the_day_boundaries(pg_svc):
    """Opened just inside and just outside each bucket's edges (UTC days)."""
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    opened = [midnight - timedelta(days=d) + timedelta(seconds=s)
              for d in (0, 7, 30, 60) for s in (0, -1)]
    with pg_svc.uow() as session:
        session.execute(ReconException.__table__.insert(), [
            {"type": "unknown_reference", "status": "open", "partner_code": PARTNER,
             "reference": f"XAGE{i:011d}", "amount_centimes": 1, "currency": "MAD",
             "since": since, "created_at": now} for i, since in enumerate(opened)])
        session.commit()
        every = exceptions.list_exceptions(session)[0]
        for age in exceptions.AGES:
            listed = [e.id for e in exceptions.list_exceptions(session, age=age)[0]]
            assert listed == [e.id for e in every if e.ageing_bucket == age], age
            assert listed, age
        with pytest.raises(exceptions.UnknownAge):
            exceptions.list_exceptions(session, age="old")


def test_a_refused_reissue_shows_the_services_reason_and_changes_nothing(queue):
    unknown = next(e for e in _all(queue.svc) if e.type == "unknown_reference")
    approver = queue["approver"]
    approver.get(f"/console/exceptions/{unknown.id}")
    before = _audit_rows(queue.svc)
    refused = approver.post(f"/console/exceptions/{unknown.id}/resolve",
                            {"kind": "reissue", "reason": "pay it again", "confirmation": PASSWORD})
    assert refused.status_code == 422
    assert "nothing to re-issue" in refused.get_data(as_text=True)
    assert 'value="pay it again"' in refused.get_data(as_text=True)   # the form is kept
    assert _exception(queue.svc, unknown.id).status == "open" and _audit_rows(queue.svc) == before
