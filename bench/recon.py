"""Reconciliation benchmark: one partner statement of about 1,000,000 lines
reconciled on PostgreSQL against 1,000,000 paid transfers, beside the COPY
floor measured in the same run.

    python -m bench.recon [--transfers N] [--out BENCHMARKS.md]

The transfers (and their households, instructions, events, release and
payment postings) are made with set-based SQL in a fresh database; that setup
is not timed. The statement is a CSV file on disk with the usual flaws: one
transfer in a thousand missing, one in a thousand paid 1.00 MAD over, 500
unknown references and 500 duplicated lines. Timed: `reconcile()` from the
open file to its commit, and the ledger check after it. Memory: the process's
peak resident set (ru_maxrss) before and after the reconciliation.
"""
from __future__ import annotations

import argparse
import base64
import json
import resource
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "disburse_bench_recon"
PARTNER = "BARID"
MISSING_EVERY = ALTERED_EVERY = 1_000
UNKNOWN_LINES = DUPLICATE_LINES = 500


def log(message: str) -> None:
    print(f"[bench-recon] {message}", file=sys.stderr, flush=True)


def _amount(i: int) -> int:
    return 50_000 + (i % 7) * 10_000


def _reference(i: int) -> str:
    return f"B{i:014d}"


SETUP_SQL = [
    "INSERT INTO registry_imports (id, filename, checksum, file_format, status, rows_total, "
    "rows_valid, rows_invalid, rows_imported, imported_by, created_at) VALUES "
    "(1, 'bench.csv', 'bench', 'csv', 'imported', :n, :n, 0, :n, 'bench', now())",
    "INSERT INTO households (household_id, cin_hash, pii, head_name, region_code, province_code, "
    "commune_code, score_micro, children_0_5, children_schooled_6_20, children_unschooled_6_20, "
    "disabled_children, orphan, flat_rate, channel, partner_code, suspended, import_id, "
    "updated_at) "
    "SELECT 'H' || i, md5(i::text), '\\x00'::bytea, 'bench', '01', '011', '0110101', 1, 1, "
    "0, 0, 0, false, false, 'cash', 'BARID', false, 1, now() FROM generate_series(1, :n) AS i",
    "INSERT INTO cycles (id, program, period, planned_by, created_at) "
    "VALUES (1, 'asd', '2026-12', 'bench', now())",
    "INSERT INTO batches (id, cycle_id, partner_code, seq, status, transfer_count, total_centimes, "
    "currency, approvals_required, created_by, created_at, updated_at) VALUES (1, 1, 'BARID', 1, "
    "'released', :n, 0, 'MAD', 1, 'bench', now(), now())",
    "INSERT INTO payment_instructions (cycle_id, program, period, household_pk, amount_centimes, "
    "currency, lines, partner_code, route_reason, created_at) SELECT 1, 'asd', '2026-12', h.id, "
    "50000 + ((h.id - 1) % 7) * 10000, 'MAD', '[]', 'BARID', 'bench', now() FROM households h",
    "INSERT INTO transfers (instruction_id, batch_id, reference, attempt, partner_code, channel, "
    "amount_centimes, currency, fee_centimes, status, chunk_no, updated_at) SELECT p.id, 1, "
    "'B' || lpad((p.household_pk - 1)::text, 14, '0'), 1, 'BARID', 'cash', p.amount_centimes, "
    "'MAD', 0, 'paid', 0, now() FROM payment_instructions p",
    "INSERT INTO transfer_events (transfer_id, at, from_status, to_status, source, actor) "
    "SELECT id, now() - interval '1 day', 'sent', 'paid', 'partner', 'BARID' FROM transfers",
    "UPDATE batches SET total_centimes = (SELECT sum(amount_centimes) FROM transfers)",
    "ANALYZE",
]


def setup(svc, transfers: int) -> None:
    from disbursement.services.ledger import postings as ledger

    with svc.engine.begin() as conn:
        for statement in SETUP_SQL:
            conn.execute(text(statement), {"n": transfers})
    with svc.uow() as session:
        total = session.execute(text("SELECT sum(amount_centimes) FROM transfers")).scalar_one()
        ledger.post_release(session, "asd", "2026-12", PARTNER, int(total), 1)
        payment = ledger.post(session, "payment", "asd", "2026-12", PARTNER, "bench payments",
                              [("paid:asd", int(total)), (f"clearing:{PARTNER}", -int(total))])
        # Each paid transfer names its payment posting, as `ledger.post_payments` does.
        session.execute(text("UPDATE transfers SET payment_posting_id = :p"), {"p": payment})
        session.commit()


def write_statement(path: Path, transfers: int) -> int:
    """The partner's CSV, streamed to disk; returns its line count."""
    lines = total = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("reference,amount_centimes,currency,status,value_date,service_point\n")

        def line(reference: str, amount: int) -> None:
            nonlocal lines, total
            out.write(f"{reference},{amount},MAD,paid,2026-12-05,SP-0001\n")
            lines += 1
            total += amount

        for i in range(transfers):
            if i % MISSING_EVERY == 0:
                continue
            line(_reference(i), _amount(i) + (100 if i % ALTERED_EVERY == 1 else 0))
            if i < DUPLICATE_LINES * 2 and i % 2 == 1:
                line(_reference(i), _amount(i))
        for k in range(UNKNOWN_LINES):
            line(f"X{k:014d}", 12_345)
        out.write(f"TRAILER,{lines},{total}\n")
    return lines


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    return 0


def run(transfers: int) -> dict:
    from bench.database import fresh_database
    from bench.floor import database_url_from_env, measure_copy_rate
    from disbursement import settings as settings_module
    from disbursement.bootstrap import build
    from disbursement.db.migrate import upgrade
    from disbursement.domain.states import Role
    from disbursement.services.ledger import postings as ledger
    from disbursement.services.officers import users
    from reconciliation import reconcile

    server = database_url_from_env()
    log(f"COPY floor, {transfers:,} rows")
    copy_rate = round(measure_copy_rate(server, transfers))
    url = fresh_database(server, BENCH_DB)
    work = Path(tempfile.mkdtemp(prefix="bench-recon-"))
    svc = build(settings_module.load({
        "DATABASE_URL": url, "DISBURSE_VAR_DIR": str(work),
        "DISBURSE_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}))
    upgrade(svc.engine)
    log(f"setup: {transfers:,} paid transfers (not timed)")
    setup(svc, transfers)
    statement = work / "statement-barid.csv"
    lines = write_statement(statement, transfers)
    log(f"statement: {lines:,} lines, {statement.stat().st_size / 1e6:.0f} MB")
    actor = users.Actor("bench", frozenset({Role.MAKER}))
    rss_before = _rss_kib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with statement.open("rb") as stream:
        report = reconcile.reconcile(svc, PARTNER, stream, statement.name, actor)
    seconds = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with svc.uow() as session:
        check = ledger.check(session)
    check_seconds = time.perf_counter() - started
    svc.engine.dispose()
    statement.unlink()
    outcome = report.as_dict()
    return {"at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "transfers": transfers, "lines": lines, "seconds": round(seconds, 2),
            "lines_per_s": round(lines / seconds), "copy_rows_per_s": copy_rate,
            "rss_before_mib": round(rss_before / 1024),
            "peak_rss_before_mib": round(peak_before / 1024),
            "peak_rss_after_mib": round(peak_after / 1024),
            "ledger_check_seconds": round(check_seconds, 2), "ledger_balanced": check.balanced,
            "matched": outcome["matched"],
            "exceptions": {k: v for k, v in outcome["exceptions"].items() if v}}


def markdown(r: dict) -> str:
    return "\n".join([
        "## Reconciliation of a 1,000,000-line statement", "",
        f"Written by `make bench-recon` (`python -m bench.recon`) on {r['at']}: one CSV statement "
        f"of {r['lines']:,} lines reconciled on PostgreSQL against {r['transfers']:,} paid "
        "transfers of one partner, in one transaction (lookups, recon items and exceptions by "
        "COPY, set-based updates, steps of 5,000 lines).", "",
        "| measure | value |", "|---|---:|",
        f"| COPY floor, same run | {r['copy_rows_per_s']:,} rows/s |",
        f"| reconciliation | {r['lines_per_s']:,} lines/s ({r['seconds']} s) |",
        f"| resident memory before reconciling | {r['rss_before_mib']} MiB |",
        f"| peak resident memory (before -> after reconciling) | {r['peak_rss_before_mib']} -> "
        f"{r['peak_rss_after_mib']} MiB |",
        f"| ledger check after it | {r['ledger_check_seconds']} s, balanced: "
        f"{str(r['ledger_balanced']).lower()} |", "",
        f"Outcomes: {r['matched']:,} matched; exceptions {json.dumps(r['exceptions'])}.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = run(args.transfers)
    from bench.sections import replace_section

    replace_section(args.out, "recon", markdown(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

