"""The demo: a whole cycle on the embedded default, with partner simulators
started and stopped as real processes, and our API served on loopback so the
simulators' signed callbacks arrive over HTTP like in production."""
from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from werkzeug.serving import make_server

from disbursement import bootstrap
from disbursement import settings as settings_module
from disbursement.bootstrap import Services, build
from disbursement.configuration.partners import load_partners
from disbursement.db.migrate import upgrade
from disbursement.db.models import Batch, Cycle, PaymentInstruction, Transfer, User
from disbursement.demo_points import load_demo_points
from disbursement.domain.states import BatchStatus, Role
from disbursement.jobs.scheduler import EmbeddedScheduler
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from disbursement.services.registry.generator import write_csv
from disbursement.web.app import create_app
from reconciliation import reconcile

DEMO_PERIOD = "2026-12"
PROGRAM = "asd"
SIMULATOR_READY_SECONDS = 20
# Faults the demo switches on so the reconciliation has something to show.
DEMO_FAULTS = {"reject_rate": 0.01, "uncollected_rate": 0.03}
DEMO_STATEMENT_FAULTS = ["--statement-missing-lines", "1", "--statement-extra-lines", "1",
                         "--statement-altered-lines", "1", "--statement-duplicate-lines", "1"]
OFFICERS = (("amina.maker", Role.MAKER), ("youssef.approver", Role.APPROVER))
SECOND_APPROVER = ("khadija.supervisor", Role.APPROVER)
# Protocols whose simulator is `python -m connectors.simulators.<protocol>` with the same flags.
HTTP_SIMULATED = ("rest", "wallet")


def with_partner_urls(svc: Services, urls: dict[str, str]) -> Services:
    """The same services (same engine) pointed at partner endpoints learnt at run
    time, e.g. simulators that chose their own port; with a job queue of their own."""
    return svc.with_partner_urls(urls)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def api_listener(host: str, port: int) -> Iterator[socket.socket]:
    """A listening socket for the API, opened before the app is built: its URL
    is the simulators' callback, and the app's services need the simulators'
    URLs (port 0: the system picks a free port)."""
    listener = socket.create_server((host, port))
    try:
        yield listener
    finally:
        listener.close()


def listener_url(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def api_server(svc: Services, host: str, port: int,
               listener: socket.socket | None = None) -> Iterator[str]:
    """Our API on `svc`, served from a thread on `host:port` or on `listener`."""
    server = make_server(host, port, create_app(services=svc), threaded=True,
                         fd=listener.fileno() if listener else None)
    thread = threading.Thread(target=server.serve_forever, name="api", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def simulator(code: str, port: int, callback_url: str, key: str, seed: int,
              extra: list[str] = (), protocol: str = "rest") -> Iterator[str]:
    env = {**bootstrap.environment(), f"SIM_{code}_KEY": key}
    # Every HTTP simulator (rest, wallet) takes the same flags.
    cmd = [sys.executable, "-m", f"connectors.simulators.{protocol}", "--port", str(port),
           "--partner", code, "--callback-url", callback_url, "--key-env", f"SIM_{code}_KEY",
           "--seed", str(seed), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = _read_line_within(proc, SIMULATOR_READY_SECONDS)
        if not line.startswith("ready on"):
            raise RuntimeError(f"simulator {code} did not start: {line!r}")
        yield line.split("ready on", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _read_line_within(proc: subprocess.Popen, seconds: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return result[0].strip() if result else ""


@dataclass
class Officers:
    maker: users.Actor
    approver: users.Actor
    second: users.Actor | None = None


def create_officers(svc: Services, with_second: bool = False) -> tuple[Officers, dict[str, str]]:
    passwords: dict[str, str] = {}
    wanted = list(OFFICERS) + ([SECOND_APPROVER] if with_second else [])
    with svc.uow() as session:
        for username, role in wanted:
            if session.execute(select(User.id).where(User.username == username)).first() is None:
                passwords[username] = secrets.token_urlsafe(12)
                users.create_user(session, users.SYSTEM, username, passwords[username], [role])
        session.commit()
        actors = [users.actor_by_name(session, name) for name, _ in wanted]
    return Officers(*actors), passwords


def run_cycle(svc: Services, officers: Officers, sims: dict[str, str], households: int, seed: int,
              workdir: Path, period: str = DEMO_PERIOD, bar=None) -> dict:
    step = bar or (lambda label: None)
    extract = workdir / f"rsu-extract-{period}.csv"
    write_csv(extract, households, seed=seed)
    step("import")
    with extract.open("rb") as stream:
        imported = registry.import_households(svc, stream, extract.name, officers.maker)
    load_demo_points(svc, officers.maker)  # each cash partner's service-point file
    step("plan")
    plan = planning.plan_cycle(svc, PROGRAM, period, officers.maker)
    step("approve")
    for batch_id in plan.batches_created:
        batch = batches.submit(svc, batch_id, officers.maker)
        batch = batches.approve(svc, batch_id, officers.approver)
        if batch.status != BatchStatus.APPROVED.value:
            batches.approve(svc, batch_id, officers.second)
    step("dispatch")
    for batch_id in plan.batches_created:
        batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()
    step("confirm")
    with httpx.Client(timeout=120) as client:
        for url in sims.values():
            client.post(f"{url}/_sim/advance", json={}).raise_for_status()
    step("reconcile")
    recon_totals: dict[str, int] = {}
    for code in sims:
        statement = svc.connector(code).fetch_statement()
        path = workdir / f"statement-{code}-{period}.csv"
        path.write_bytes(statement)
        with path.open("rb") as stream:
            report = reconcile.reconcile(svc, code, stream, path.name, officers.maker).as_dict()
        recon_totals["matched"] = recon_totals.get("matched", 0) + report["matched"]
        for kind, count in report["exceptions"].items():
            recon_totals[kind] = recon_totals.get(kind, 0) + count
    step("ledger")
    return _summary(svc, imported, plan, recon_totals, period)


def _summary(svc: Services, imported, plan, recon: dict[str, int], period: str) -> dict:
    with svc.uow() as session:
        cycle_id = session.execute(select(Cycle.id).where(Cycle.program == PROGRAM,
                                                          Cycle.period == period)).scalar_one()
        by_status = dict(session.execute(
            select(Transfer.status, func.count()).join(Batch, Batch.id == Transfer.batch_id)
            .where(Batch.cycle_id == cycle_id).group_by(Transfer.status)).all())
        instructions, amount = session.execute(
            select(func.count(), func.coalesce(func.sum(PaymentInstruction.amount_centimes), 0))
            .where(PaymentInstruction.cycle_id == cycle_id)).one()
        check = ledger.check(session, PROGRAM, period)
    exceptions = {k: v for k, v in recon.items() if k != "matched"}
    return {
        "households": imported.rows_imported,
        "eligible": plan.eligible_new,
        "instructions": instructions,
        "unroutable": plan.unroutable,
        "amount_total_centimes": int(amount),
        "batches": len(plan.batches_created),
        "by_status": by_status,
        "transfers_accounted": sum(by_status.values()) + plan.unroutable == instructions,
        "reconciliation": {"matched": recon.get("matched", 0), "exceptions": exceptions},
        "ledger": [{"partner": c.partner, "released": c.released, "paid": c.paid,
                    "returned": c.returned, "outstanding": c.outstanding,
                    "differences": c.differences} for c in check.cycles],
        "ledger_balanced": check.balanced,
    }


def _demo_settings(var_dir: Path, keys: dict[str, str], urls: dict[str, str],
                   extra_env: dict[str, str] | None = None) -> settings_module.Settings:
    env = {k: v for k, v in bootstrap.environment().items()
           if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DISBURSE_VAR_DIR": str(var_dir), **(extra_env or {})})
    env.update({settings_module.partner_key_env(c): k for c, k in keys.items()})
    env.update({f"PARTNER_{c}_URL": u for c, u in urls.items()})
    return settings_module.load(env)


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the simulators we started are stopped too."""
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def run_demo(households: int, seed: int = 7, show_progress: bool | None = None) -> dict:
    """A whole cycle in a throwaway directory; returns the JSON summary."""
    from tqdm import tqdm

    _stop_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="disburse-demo-"))
    scratch = bootstrap.settings_from_environment(DISBURSE_VAR_DIR=str(workdir))
    # The demo drives the partners with an HTTP simulator (REST and wallet);
    # file partners have their own simulators.
    configured = load_partners(scratch.config_dir)
    codes = sorted(c for c, p in configured.items() if p.protocol in HTTP_SIMULATED)
    keys = {code: secrets.token_hex(32) for code in codes}
    svc = build(_demo_settings(workdir, keys, {}))
    upgrade(svc.engine)
    officers, _ = create_officers(svc, with_second=True)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    phases = ["import", "plan", "approve", "dispatch", "confirm", "reconcile", "ledger"]
    with ExitStack() as stack, tqdm(total=len(phases), desc="demo", disable=not show,
                                    file=sys.stderr) as bar:
        listener = stack.enter_context(api_listener("127.0.0.1", 0))
        api = listener_url(listener)
        sims = {}
        for i, code in enumerate(codes):
            faults = DEMO_STATEMENT_FAULTS if i == 0 else []
            # Port 0: each simulator binds a free port itself and tells us which.
            sims[code] = stack.enter_context(simulator(
                code, 0, f"{api}/api/v1/partners/{code}/confirmations", keys[code],
                seed + i, [*faults, "--reject-rate", str(DEMO_FAULTS["reject_rate"]),
                           "--uncollected-rate", str(DEMO_FAULTS["uncollected_rate"])],
                configured[code].protocol))
        svc = svc.with_partner_urls(sims)
        stack.enter_context(api_server(svc, "127.0.0.1", 0, listener))

        def step(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1) if label != "import" else None

        summary = run_cycle(svc, officers, sims, households, seed, workdir, bar=step)
        bar.update(1)
    svc.engine.dispose()
    return summary


def _schedule_in_process(svc: Services) -> None:
    """Embedded mode: the sweeper, status queries, file collection and expiry
    run on a thread of this process (with Redis, `disburse scheduler` does)."""
    if svc.settings.embedded_jobs:
        EmbeddedScheduler(svc).start()


def serve(host: str, port: int, with_demo: bool, households: int) -> None:
    """`make run`: serve the console and API; with demo data, start the
    simulators on their configured ports and run one cycle first."""
    _stop_on_sigterm()
    base = bootstrap.settings_from_environment()
    if not with_demo:
        svc = build(base)
        upgrade(svc.engine)
        _schedule_in_process(svc)
        make_server(host, port, create_app(services=svc), threaded=True).serve_forever()
        return
    var_dir = base.var_dir
    keys = _persistent_partner_keys(var_dir, build(base).partners)
    svc = build(_demo_settings(var_dir, keys, {}))
    upgrade(svc.engine)
    officers, passwords = create_officers(svc, with_second=True)
    if passwords:
        creds = var_dir / "demo-officers.json"
        creds.write_text(json.dumps(passwords, indent=2))
        creds.chmod(0o600)
    with ExitStack() as stack:
        api = stack.enter_context(api_server(svc, host, port))
        sims = {code: stack.enter_context(simulator(
                    code, int(p.base_url.rsplit(":", 1)[1]),
                    f"{api}/api/v1/partners/{code}/confirmations", keys[code], 1,
                    ["--reject-rate", "0.01", "--uncollected-rate", "0.03"], p.protocol))
                for code, p in sorted(svc.partners.items()) if p.protocol in HTTP_SIMULATED}
        with svc.uow() as session:
            planned = session.execute(select(func.count()).select_from(Cycle)).scalar_one()
        if not planned:
            print(f"loading demo data: {households} households, one full cycle ...", flush=True)
            summary = run_cycle(svc, officers, sims, households, 7, var_dir)
            print(json.dumps({k: summary[k] for k in ("households", "instructions", "by_status",
                                                      "ledger_balanced")}), flush=True)
        # The demo starts no file partners' servers: nothing to collect from.
        _schedule_in_process(svc.with_overrides(collect_files_every_seconds=0))
        print(f"serving on {api}  (officers and passwords: {var_dir / 'demo-officers.json'})",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)


def _persistent_partner_keys(var_dir: Path, partners) -> dict[str, str]:
    path = var_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for code in partners:
        name = settings_module.partner_key_env(code)
        if name not in stored:
            stored[name] = secrets.token_hex(32)
            changed = True
    if changed:
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    return {code: stored[settings_module.partner_key_env(code)] for code in partners}
