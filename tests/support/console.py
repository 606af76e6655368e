"""Helpers for console tests: an app with a session secret, a browser-like
client that carries the CSRF token, a registry extract to edit, and a second
factor's code that is still good when it arrives."""
from __future__ import annotations

import csv
import dataclasses
import re
import secrets
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyotp

from disbursement.bootstrap import Services
from disbursement.db.bulk import reserve_ids, write_rows
from disbursement.db.models import (
    Batch,
    Cycle,
    Household,
    PaymentInstruction,
    RegistryImport,
    Transfer,
    utcnow,
)
from disbursement.db.models.console import HouseholdAccount
from disbursement.domain.references import new_reference
from disbursement.services.registry.generator import generate_households
from disbursement.services.registry.schema import COLUMNS
from disbursement.web.app import create_app
from tests.support.waiting import wait_until

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
# A code read this many seconds before its step ends may be stale on arrival.
TOTP_MARGIN_SECONDS = 5


def console_services(svc: Services) -> Services:
    """The same services with a session secret, as `make run` or production
    has, sharing the original's job queue (so the test can drain it)."""
    _ = svc.queue  # created now, so that the copy holds the same queue
    return dataclasses.replace(svc, settings=svc.settings.with_overrides(
        session_secret=secrets.token_bytes(32)))


class Officer:
    """A Flask test client used like a browser: it reads the CSRF token from
    the last page and sends it with every form. Over https, as the session
    cookie is Secure."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.client.environ_base["wsgi.url_scheme"] = "https"
        self.token = ""

    def get(self, path: str, **kw):
        response = self.client.get(path, base_url="https://localhost", **kw)
        match = CSRF_META.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token
        # Over https Flask-WTF also checks that the Referer is this site, as a
        # browser's would be.
        return self.client.post(path, data=form, base_url="https://localhost",
                                headers={"Referer": "https://localhost/console/"}, **kw)

    def login(self, username: str, password: str):
        self.get("/console/login")
        return self.post("/console/login", {"username": username, "password": password})


def console_app(svc: Services):
    return create_app(services=console_services(svc))


def write_extract(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
    return path


def eligible_rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    """n generated households, all under the eligibility threshold."""
    rows = []
    for row in generate_households(n * 3, seed):
        if Decimal(row["score"]) < Decimal("9"):
            rows.append(row)
        if len(rows) == n:
            return rows
    raise AssertionError("not enough eligible rows generated")


# ------------------------------------------------------------------ bulk batch
# A reviewable batch written straight with the bulk helpers (COPY on
# PostgreSQL), so a 50,000-transfer batch is built in seconds.

HOUSEHOLD_COLUMNS = ["id", "household_id", "cin_hash", "phone_hash", "account_hash", "pii",
                     "head_name", "region_code", "province_code", "commune_code", "score_micro",
                     "children_0_5", "children_schooled_6_20", "children_unschooled_6_20",
                     "disabled_children", "orphan", "flat_rate", "channel", "partner_code",
                     "suspended", "import_id", "updated_at"]
REGIONS = [("01", "011"), ("02", "021"), ("06", "061"), ("09", "091")]


def build_batch(svc: Services, n: int, *, maker: str = "maker", shared_cin: int = 0,
                shared_phone: int = 0, unusual: int = 0, new_accounts: int = 0,
                year: int = 2026) -> int:
    """A submitted batch of n transfers for ASD {year}-06 (a fresh year per
    batch built in one test). The first `shared_cin`
    households pair up on a national ID, the next `shared_phone` on a phone;
    `unusual` households were paid a tenth of today's amount in {year}-05, and
    `new_accounts` were paid in {year}-05 before their account was first seen.
    Returns the batch id."""
    now = utcnow()
    earlier = now - timedelta(days=30)
    amount = 50_000
    with svc.uow() as session:
        imp = RegistryImport(filename="bulk.csv", checksum=secrets.token_hex(32), file_format="csv",
                             status="imported", imported_by=maker)
        cycles = [Cycle(program="asd", period=p, planned_by=maker)
                  for p in (f"{year}-05", f"{year}-06")]
        session.add_all([imp, *cycles])
        session.flush()
        previous_cycle, cycle = cycles
        batch = Batch(cycle_id=cycle.id, partner_code="BARID", seq=1, status="submitted",
                      transfer_count=n, total_centimes=n * amount, currency="MAD",
                      approvals_required=1, created_by=maker, submitted_by=maker)
        session.add(batch)
        session.flush()
        sealed = svc.vault.seal({"cin": "AB123456", "phone": "+212600000000",
                                 "account": None, "wallet_phone": "+212600000000"})
        household_ids = reserve_ids(session, Household.__table__, n)
        households, accounts = [], []
        for i, pk in enumerate(household_ids):
            cin = f"C{year}{i // 2}" if i < shared_cin else f"C{year}-{i}"
            phone = (f"P{year}{i // 2}" if shared_cin <= i < shared_cin + shared_phone
                     else f"P{year}-{i}")
            region, province = REGIONS[i % len(REGIONS)]
            account_hash = svc.vault.search_hash(f"A{year}-{i}")
            households.append((pk, f"HH{year}-{i:08d}", svc.vault.search_hash(cin),
                               svc.vault.search_hash(phone), account_hash, sealed,
                               "فاطمة الزهراء Benali", region, province, f"{province}001",
                               5_000_000, 1, 1, 0, 0, False, False, "wallet", None, False,
                               imp.id, now))
            accounts.append({"household_id": f"HH{year}-{i:08d}", "account_hash": account_hash,
                             "first_seen_at": now
                             if i >= n - new_accounts else earlier - timedelta(days=1)})
        write_rows(session, Household.__table__, HOUSEHOLD_COLUMNS, households)
        session.execute(HouseholdAccount.__table__.insert(), accounts)
        # Earlier instructions: "unusual" households at a tenth of today's
        # amount, "new account" households at the same amount.
        previous = list(range(unusual)) + list(range(n - new_accounts, n))
        columns = ["id", "cycle_id", "program", "period", "household_pk", "amount_centimes",
                   "currency", "lines", "partner_code", "route_reason", "created_at"]
        prev_ids = reserve_ids(session, PaymentInstruction.__table__, len(previous))
        write_rows(session, PaymentInstruction.__table__, columns, [
            (pid, previous_cycle.id, "asd", f"{year}-05", household_ids[i],
             amount // 10 if i < unusual else amount, "MAD", [["floor", amount]], "BARID",
             "test", earlier)
            for pid, i in zip(prev_ids, previous, strict=True)], json_columns=["lines"])
        instruction_ids = reserve_ids(session, PaymentInstruction.__table__, n)
        write_rows(session, PaymentInstruction.__table__, columns, [
            (iid, cycle.id, "asd", f"{year}-06", hid, amount, "MAD", [["floor", amount]], "BARID",
             "test", now) for iid, hid in zip(instruction_ids, household_ids, strict=True)],
            json_columns=["lines"])
        transfer_ids = reserve_ids(session, Transfer.__table__, n)
        write_rows(session, Transfer.__table__,
                   ["id", "instruction_id", "batch_id", "reference", "attempt", "partner_code",
                    "channel", "amount_centimes", "currency", "fee_centimes", "status", "chunk_no",
                    "updated_at"],
                   [(tid, iid, batch.id, new_reference(), 1, "BARID", "wallet", amount, "MAD",
                     350, "pending_approval", k // 2000, now)
                    for k, (tid, iid)
                    in enumerate(zip(transfer_ids, instruction_ids, strict=True))])
        session.commit()
        return batch.id


def fresh_totp_code(totp: pyotp.TOTP) -> str:
    """The current code, read early enough in its step that a few requests
    made with it all fall in the same step."""
    wait_until(lambda: time.time() % totp.interval <= totp.interval - TOTP_MARGIN_SECONDS,
               "a fresh TOTP step", timeout=totp.interval)
    return totp.now()
