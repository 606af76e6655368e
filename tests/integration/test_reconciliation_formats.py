"""The matcher's outcomes from each statement format partners send: the same
situation written as CSV, camt.053 (with balances), camt.054 (notifications)
and MT940 (with balances and multi-line :86:), reconciled on PostgreSQL. And a
statement whose opening balance + entries does not reach its closing balance
is a statement-level exception."""
from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from connectors.iso20022.camt_writer import (
    AccountReport,
    BookedEntry,
    BookedTransaction,
    closing_balance,
    write_camt053,
    write_camt054,
)
from disbursement.db.models import ReconItem, Statement
from disbursement.db.models.ledger import ReconException
from disbursement.domain.references import new_reference
from disbursement.domain.statements import EntryKind
from disbursement.services.ledger import postings as ledger
from disbursement.services.tracking import confirmations
from reconciliation import reconcile
from tests.conftest import create_officers
from tests.support.api import Api
from tests.support.recon_world import build_world, csv_statement

pytestmark = pytest.mark.integration
PARTNER = "BARID"
VALUE_DATE = date(2026, 12, 5)
UNKNOWN = new_reference()   # well formed (MT940 narratives are searched for such), never issued
OPENING = 10_000_000_00
ACCOUNT = "011780000012345678901234"


@pytest.fixture
def world(pg_svc, households_csv, redis_url):
    officers = create_officers(pg_svc)
    built = build_world(pg_svc, officers, households_csv, redis_url)
    built.officers = officers
    return built


def _confirm(svc, refs: list[str], status: str) -> None:
    confirmations.apply(svc, PARTNER, [
        {"event_id": None, "reference": r, "status": status, "occurred_at": None, "reason": None,
         "service_point": None} for r in refs])


def _camt(writer, lines, balances: bool, closing_off: int = 0) -> io.BytesIO:
    entries = [BookedEntry([BookedTransaction(ref, amount, currency, kind,
                                              "MD06" if kind == EntryKind.RETURN else None)],
                           VALUE_DATE, VALUE_DATE) for ref, amount, currency, kind in lines]
    report = AccountReport("STMT-1", ACCOUNT, "MAD", entries, VALUE_DATE, VALUE_DATE,
                           OPENING if balances else None)
    if balances and closing_off:
        report = AccountReport("STMT-1", ACCOUNT, "MAD", entries, VALUE_DATE, VALUE_DATE, OPENING,
                               closing_balance(report) + closing_off)
    out = io.BytesIO()
    writer(out, "MSG-1", datetime(2026, 12, 6, 6, 0, tzinfo=UTC), [report])
    out.seek(0)
    return out


def _units(centimes: int) -> str:
    return f"{centimes // 100},{centimes % 100:02d}"


def _mt940(lines, closing_off: int = 0) -> io.BytesIO:
    day = VALUE_DATE.strftime("%y%m%d")
    body = [":20:STMT1", f":25:{ACCOUNT}", ":28C:1/1", f":60F:C{day}MAD{_units(OPENING)}"]
    balance = OPENING
    for ref, amount, _currency, kind in lines:
        mark = "D" if kind == EntryKind.PAYMENT else "C"
        balance += -amount if kind == EntryKind.PAYMENT else amount
        body.append(
            f":61:{day}{VALUE_DATE.strftime('%m%d')}{mark}{_units(amount)}NTRFNONREF//B{len(body)}")
        # The reference sits in a multi-line :86: narrative.
        body += [f":86:/EREF/{ref}",
                 "/REMI/AIDE SOCIALE DIRECTE" + (" MD06" if mark == "C" else ""),
                 "/ORDP/PROGRAMME ASD"]
    body += [f":62F:C{day}MAD{_units(balance + closing_off)}", "-"]
    return io.BytesIO(("\r\n".join(body) + "\r\n").encode())


def _write(format_name: str, lines, closing_off: int = 0) -> io.BytesIO:
    if format_name == "csv":
        return csv_statement([(r, a, c, "returned" if k == EntryKind.RETURN else "paid")
                              for r, a, c, k in lines])
    if format_name == "camt053":
        return _camt(write_camt053, lines, True, closing_off)
    if format_name == "camt054":
        return _camt(write_camt054, lines, False)
    return _mt940(lines, closing_off)


@pytest.mark.parametrize("format_name", ["csv", "camt053", "camt054", "mt940"])
def test_each_outcome_from_each_format(world, format_name):
    svc, r = world.svc, world.refs[PARTNER]
    amount = {ref: world.transfer(ref).amount_centimes for ref in r}
    _confirm(svc, [r[0], r[1], r[2], r[3], r[8], r[11]], "paid")
    _confirm(svc, [r[4], r[5], r[10], r[12]], "available")
    _confirm(svc, [r[4]], "cancelled")
    _confirm(svc, [r[5], r[10]], "expired")
    _confirm(svc, [r[7]], "rejected")
    P, R = EntryKind.PAYMENT, EntryKind.RETURN
    lines = [(r[0], amount[r[0]], "MAD", P), (r[0], amount[r[0]], "MAD", P),
             (r[1], amount[r[1]] + 100, "MAD", P), (r[2], amount[r[2]] - 100, "MAD", P),
             (UNKNOWN, 5000, "MAD", P), (r[4], amount[r[4]], "MAD", P),
             (r[5], amount[r[5]], "MAD", P), (r[7], amount[r[7]], "MAD", P),
             (r[9], amount[r[9]], "MAD", P), (r[10], amount[r[10]], "MAD", R),
             (r[11], amount[r[11]], "MAD", R), (r[12], amount[r[12]], "MAD", R)]
    expected = [(r[0], "matched"), (r[0], "duplicate_line"), (r[1], "amount_over"),
                (r[2], "amount_under"), (UNKNOWN, "unknown_reference"),
                (r[4], "paid_but_cancelled"), (r[5], "paid_but_expired"),
                (r[7], "paid_in_statement_not_in_records"), (r[9], "matched"),
                (r[10], "returned"), (r[11], "return_of_paid"), (r[12], "return_not_allowed"),
                (r[8], "paid_in_records_missing_from_statement"),
                (r[11], "paid_in_records_missing_from_statement")]
    if format_name != "mt940":   # an MT940 statement has one currency for all its lines
        lines.append((r[3], amount[r[3]], "EUR", P))
        expected.append((r[3], "currency_mismatch"))
    else:
        expected.append((r[3], "paid_in_records_missing_from_statement"))

    report = reconcile.reconcile(svc, PARTNER, _write(format_name, lines), f"s.{format_name}",
                                 world.officers.maker, format_name)

    with svc.uow() as session:
        got = session.execute(select(ReconItem.reference, ReconItem.outcome)
                              .where(ReconItem.statement_id == report.statement_id)).all()
        statement = session.get(Statement, report.statement_id)
        assert (statement.format, statement.balance_difference_centimes) == (
            format_name, 0 if format_name in ("camt053", "mt940") else None)
        checked = ledger.check(session)
    assert all(c.balanced for c in checked.cycles) and not checked.unbalanced_postings
    # The statement says paid what we hold cancelled, expired, rejected: the
    # partner's books disagree with ours on exactly those.
    assert {k: set(v) for k, v in checked.books.first.items()} == {
        "on_statement_not_paid_here": {r[4], r[5], r[7]}}
    assert Counter(got) == Counter(expected)
    assert [world.status(x) for x in (r[9], r[10], r[12])] == ["paid", "returned", "available"]


@pytest.mark.parametrize("format_name", ["camt053", "mt940"])
def test_statement_whose_balances_do_not_add_up_is_an_exception(world, format_name):
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(svc, r[:2], "paid")
    lines = [(ref, world.transfer(ref).amount_centimes, "MAD", EntryKind.PAYMENT) for ref in r[:2]]

    report = reconcile.reconcile(svc, PARTNER, _write(format_name, lines, closing_off=-250),
                                 f"s.{format_name}", world.officers.maker, format_name)

    assert report.balance_difference == 250
    assert report.as_dict()["exceptions"]["balance_difference"] == 1
    with svc.uow() as session:
        row = session.execute(select(ReconException).where(
            ReconException.type == "balance_difference")).scalar_one()
        assert (row.statement_id, row.amount_centimes,
                row.status) == (report.statement_id, -250, "open")
        assert "difference 250" in row.detail


def test_statement_upload_over_the_api_names_its_format(world):
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(svc, r[:2], "paid")
    lines = [(ref, world.transfer(ref).amount_centimes, "MAD", EntryKind.PAYMENT) for ref in r[:2]]
    api = Api(svc)
    created = api.call("POST", f"/api/v1/partners/{PARTNER}/statements", "maker", data={
        "file": (_write("camt053", lines), "barid.xml"), "format": "camt053"})
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["matched"],
            created.get_json()["balance_difference_centimes"]) == (2, 0)
    wrong = api.call("POST", f"/api/v1/partners/{PARTNER}/statements", "maker", data={
        "file": (_write("camt053", lines[:1]), "barid.xml"), "format": "csv"})
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (422, "invalid_statement")
