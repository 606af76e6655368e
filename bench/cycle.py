"""A whole monthly cycle at scale on PostgreSQL + Redis, timed per phase.

    python -m bench.cycle [--households 100000] [--workers 2]

Runs against TEST_DATABASE_URL / TEST_REDIS_URL (what `make bench` ensures),
in a database of its own. Our API runs under gunicorn (2 workers) and receives
the simulators' signed confirmation lists; dispatch runs in `disburse worker`
processes. Measures the floors in the same run and writes BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench import floor
from bench.database import fresh_database
from disbursement import settings as settings_module
from disbursement.bootstrap import build
from disbursement.db.migrate import upgrade
from disbursement.db.models import Transfer
from disbursement.demo import create_officers, free_port, simulator
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.ledger import postings as ledger
from disbursement.services.registry import importing as registry
from disbursement.services.registry.generator import write_csv
from reconciliation import reconcile

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "disburse_bench"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def gunicorn(env: dict[str, str], port: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
         "--workers", "2", "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
         "disbursement.web.wsgi:app"],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not come up")
        yield f"http://127.0.0.1:{port}"
    finally:
        floor.stop_gunicorn(proc)


class Phases:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    @contextmanager
    def timed(self, name: str, items: int | None = None, unit: str = ""):
        log(f"{name} ...")
        started = time.perf_counter()
        box: dict = {"items": items}
        yield box
        seconds = time.perf_counter() - started
        n = box["items"]
        self.rows.append({"phase": name, "seconds": round(seconds, 2), "items": n,
                          "rate": round(n / seconds) if n else None, "unit": unit})
        log(f"{name}: {seconds:.2f}s" + (f", {n / seconds:,.0f} {unit}/s" if n else ""))


def run(households: int, workers: int) -> dict:
    urls = {"db": os.environ.get("TEST_DATABASE_URL") or os.environ["DATABASE_URL"],
            "redis": os.environ.get("TEST_REDIS_URL") or os.environ["REDIS_URL"]}
    log("measuring the floors (COPY, executemany, trivial endpoint under gunicorn)")
    floors = {"copy_rows_per_s": round(floor.measure_copy_rate(floor.libpq_url(urls["db"]))),
              "executemany_rows_per_s": round(floor.measure_executemany_rate(
                  floor.libpq_url(urls["db"]))),
              "trivial_endpoint": floor.measure_trivial_endpoint(5)}
    db_url = fresh_database(urls["db"], BENCH_DB)
    work = Path(tempfile.mkdtemp(prefix="disburse-bench-"))
    keys = {"BARID": secrets.token_hex(16), "CASHPLUS": secrets.token_hex(16),
            "WAFACASH": secrets.token_hex(16)}
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": urls["redis"],
           "DISBURSE_VAR_DIR": str(work),
           "DISBURSE_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
           **{settings_module.partner_key_env(c): k for c, k in keys.items()}}
    svc = build(settings_module.load(env))
    upgrade(svc.engine)
    svc.queue.connection.flushdb()
    officers, _ = create_officers(svc, with_second=True)
    phases = Phases()
    extract = work / "extract.csv"
    with phases.timed("generate extract (CSV)", households, "rows"):
        write_csv(extract, households, seed=11)
    with ExitStack() as stack:
        api = stack.enter_context(gunicorn(env, free_port()))
        sims = {code: stack.enter_context(simulator(
            code, 0, f"{api}/api/v1/partners/{code}/confirmations", keys[code], 3,
            ["--callback-batch", "2000", "--reject-rate", "0.01", "--uncollected-rate", "0.03"]))
            for code in keys}
        # Dispatch (here and in the worker processes) goes to the ports the
        # simulators chose.
        env.update({f"PARTNER_{c}_URL": u for c, u in sims.items()})
        svc = svc.with_partner_urls(sims)
        with phases.timed("registry import", households, "rows"), extract.open("rb") as stream:
            registry.import_households(svc, stream, extract.name, officers.maker)
        with phases.timed("plan cycle", None, "instructions") as box:
            plan = planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
            box["items"] = plan.instructions_created
        with phases.timed("submit + approve batches", len(plan.batches_created), "batches"):
            for batch_id in plan.batches_created:
                batches.submit(svc, batch_id, officers.maker)
                if batches.approve(svc, batch_id, officers.approver).status != "approved":
                    batches.approve(svc, batch_id, officers.second)
        with phases.timed("release (outbox + ledger)", plan.instructions_created, "transfers"):
            for batch_id in plan.batches_created:
                batches.release(svc, batch_id, officers.maker)
        with phases.timed(f"dispatch ({workers} rq workers, REST)", plan.instructions_created,
                          "transfers"):
            worker = [sys.executable, "-m", "disbursement.cli", "worker", "--burst"]
            procs = [subprocess.Popen(worker, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
                     for _ in range(workers)]
            for proc in procs:
                proc.wait()
        with phases.timed("confirmations (signed lists over HTTP, gunicorn 2 workers)", None,
                          "confirmations") as box:
            delivered = 0
            with httpx.Client(timeout=600) as client:
                for url in sims.values():
                    delivered += client.post(f"{url}/_sim/advance", json={}).json()["delivered"]
            box["items"] = delivered
        statements = {code: svc.connector(code).fetch_statement() for code in sims}
        lines = sum(s.count(b"\n") - 2 for s in statements.values())
        with phases.timed("reconcile statements", lines, "lines"):
            for code, body in statements.items():
                reconcile.reconcile(svc, code, io.BytesIO(body), f"{code}.csv", officers.maker)
        with phases.timed("ledger check"), svc.uow() as session:
            balanced = ledger.check(session, "asd", "2026-12").balanced
    with svc.uow() as session:
        by_status = dict(session.execute(select(Transfer.status, func.count())
                                         .group_by(Transfer.status)).all())
    svc.engine.dispose()
    return {"households": households, "instructions": plan.instructions_created,
            "batches": len(plan.batches_created), "workers": workers, "floors": floors,
            "phases": phases.rows, "by_status": by_status, "ledger_balanced": balanced,
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def write_markdown(result: dict, path: Path) -> None:
    f = result["floors"]
    lines = [
        "# Benchmarks", "",
        f"Written by `make bench` (`python -m bench.cycle`) on {result['at']}: a monthly cycle of "
        f"{result['households']:,} households on PostgreSQL + Redis, this 2-core machine, "
        f"{result['workers']} RQ worker processes, our API under gunicorn with 2 sync workers, "
        "three REST partner simulators on loopback. Timings are wall-clock for the whole "
        "phase.", "",
        "## Floors measured in the same run", "",
        "| floor | rate |", "|---|---|",
        f"| COPY into PostgreSQL | {f['copy_rows_per_s']:,} rows/s |",
        f"| batched executemany (pipeline) | {f['executemany_rows_per_s']:,} rows/s |",
        f"| trivial Flask endpoint, gunicorn 2 workers ({f['trivial_endpoint']['tool']}) | "
        f"{round(f['trivial_endpoint']['req_per_s']):,} requests/s |", "",
        "## Phases", "", "| phase | seconds | items | rate |", "|---|---:|---:|---:|"]
    for row in result["phases"]:
        rate = f"{row['rate']:,} {row['unit']}/s" if row["rate"] else ""
        items = f"{row['items']:,}" if row["items"] else ""
        lines.append(f"| {row['phase']} | {row['seconds']} | {items} | {rate} |")
    lines += ["", f"Outcome: {result['instructions']:,} instructions in "
              f"{result['batches']} batches; "
              f"transfers by state {json.dumps(result['by_status'])}; ledger balanced: "
              f"{str(result['ledger_balanced']).lower()}.", "",
              "How to read the phases: *registry import* includes marshmallow validation of every "
              "row and AES-GCM sealing of personal data; *plan* writes instructions, transfers and "
              "their first events with COPY; *dispatch* includes starting the worker processes; "
              "*confirmations* is wall time for the simulators to deliver every `available` and "
              "`paid` confirmation, one signed list of 2,000 at a time per simulator, so it "
              "includes the simulators' own work and their sequential delivery (not yet profiled "
              "apart from our endpoint).", "",
              "Targets for later issues: plan >= 50,000 instructions/s; confirmations >= 20,000/s "
              "in bulk.", ""]
    from bench.sections import marked_sections

    # Sections other benchmarks wrote (bench.recon) stay.
    kept = marked_sections(path)
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = run(args.households, args.workers)
    write_markdown(result, args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
