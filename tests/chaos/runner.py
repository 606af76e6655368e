"""One chaos run: start everything, plan and approve a cycle, release it while
faults land at seeded random times, recover as an operator would, wait until
quiet, and judge our database against the partners' journals.

    python -m tests.chaos --households 2000 --faults 13 --seed 1 [--report RELIABILITY.md]
"""
from __future__ import annotations

import base64
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from disbursement import settings as settings_module
from disbursement.bootstrap import build
from disbursement.db.migrate import upgrade
from disbursement.demo import create_officers
from disbursement.domain.states import Role
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from disbursement.services.registry.generator import write_csv
from tests.chaos import faults as chaos_faults
from tests.chaos.stack import ROOT, Stack, free_ports, open_stack, wait_for
from tests.chaos.verdict import Verdict, judge

PROGRAM, PERIOD = "asd", "2026-12"
PARTNERS = ("BARID", "CASHPLUS", "WAFACASH")
OPERATOR = "chaos.operator"
# Seconds between two faults, drawn uniformly; the fault itself takes its own time.
FAULT_GAP_SECONDS = (0.2, 1.5)
AUTO_ADVANCE_SECONDS = 2.0
# Each partner call takes this long, so that a kill or a restart lands while a
# chunk is at the partner (taken there, not yet committed here) often enough.
PARTNER_LATENCY_MS = 200
QUIET_TIMEOUT_SECONDS = 300.0
RECOVER_EVERY_SECONDS = 30.0
RELEASE_RETRY_SECONDS = 1.0
# Batches are released one by one over this share of the expected fault window.
RELEASE_SHARE = 0.8


@dataclass
class Options:
    households: int = 2_000
    faults: int = 13
    seed: int = 1
    report: Path | None = None
    work: Path | None = None
    keep: bool = False


@dataclass
class Run:
    options: Options
    phases: dict[str, float] = field(default_factory=dict)
    faults: list[dict] = field(default_factory=list)
    recovery: list[str] = field(default_factory=list)
    quiet: bool = False
    release_retries: int = 0
    batches: int = 0
    instructions: int = 0
    verdict: Verdict | None = None
    replay_answers: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    # processes a killed one left behind (an RQ worker's scheduler child), by name
    orphans: dict[str, int] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


def partner_config(work: Path) -> Path:
    """config/ with only the REST partners (their simulators keep journals)."""
    config = work / "config"
    shutil.copytree(ROOT / "config", config)
    partners = tomllib.loads((config / "partners.toml").read_text())["partners"]
    lines = []
    for code in PARTNERS:
        lines.append(f"[partners.{code}]")
        for key, value in partners[code].items():
            if isinstance(value, dict):
                value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
                lines.append(f"{key} = {value}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    (config / "partners.toml").write_text("\n".join(lines))
    return config


def environment(work: Path, database_url: str, redis_url: str, keys: dict[str, str],
                sims: dict[str, str], households: int) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PARTNER_", "DISBURSE_", "PROMETHEUS_"))
            and k not in ("DATABASE_URL", "REDIS_URL")}
    # Small chunks and batches so that faults land in the middle of dispatch;
    # short backoff so that a run recovers within minutes.
    chunk = max(50, min(500, households // 100))
    return {**base, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "DISBURSE_VAR_DIR": str(work / "var"), "DISBURSE_CONFIG_DIR": str(work / "config"),
            "DISBURSE_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "DISPATCH_CHUNK_TRANSFERS": str(chunk), "BATCH_SIZE_TRANSFERS": str(chunk * 2),
            "RETRY_BASE_SECONDS": "0.5", "RETRY_CAP_SECONDS": "5",
            "BREAKER_COOLDOWN_SECONDS": "5",
            "DISBURSE_USER": OPERATOR, "DISBURSE_PASSWORD": secrets.token_urlsafe(16),
            **{settings_module.partner_key_env(c): k for c, k in keys.items()},
            **{f"PARTNER_{c}_URL": u for c, u in sims.items()}}


def run(options: Options) -> Run:
    result = Run(options)
    work = options.work or Path(tempfile.mkdtemp(prefix="disburse-chaos-"))
    (work / "prometheus").mkdir(parents=True, exist_ok=True)
    log(f"working in {work}")
    with open_stack(work) as stack:
        try:
            _run(stack, work, result)
        finally:
            result.restarts = {name: proc.starts - 1 for name, proc in stack.procs.items()}
            result.orphans = {name: len(pids) for name, proc in stack.procs.items()
                              if (pids := proc.orphans())}
    if not options.keep and options.work is None and result.verdict and result.verdict.ok:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _timed(result: Run, name: str, started: float) -> None:
    result.phases[name] = round(time.monotonic() - started, 1)
    log(f"{name}: {result.phases[name]}s")


def _run(stack: Stack, work: Path, result: Run) -> None:
    options = result.options
    rng = random.Random(options.seed)
    started = time.monotonic()
    database_url, redis_url = stack.start_servers()
    api_port, *sim_ports = free_ports(1 + len(PARTNERS))
    api = f"http://127.0.0.1:{api_port}"
    sims = {code: f"http://127.0.0.1:{port}" for code, port in zip(PARTNERS, sim_ports,
                                                                   strict=True)}
    keys = {code: secrets.token_hex(16) for code in PARTNERS}
    partner_config(work)
    env = environment(work, database_url, redis_url, keys, sims, options.households)
    svc = build(settings_module.load(env))
    upgrade(svc.engine)
    officers, _ = create_officers(svc, with_second=True)
    with svc.uow() as session:
        users.create_user(session, users.SYSTEM, OPERATOR, env["DISBURSE_PASSWORD"],
                          [Role.ADMIN, Role.MAKER])
        session.commit()
        operator = users.actor_by_name(session, OPERATOR)
    for seed, code in enumerate(PARTNERS, start=options.seed * 10):
        stack.simulator(code, int(sims[code].rsplit(":", 1)[1]),
                        f"{api}/api/v1/partners/{code}/confirmations", keys[code], seed,
                        ["--auto-advance", str(AUTO_ADVANCE_SECONDS), "--callback-batch", "200",
                         "--reject-rate", "0.02", "--uncollected-rate", "0.03",
                         "--timeout-sleep-seconds", "12", "--latency-ms", str(PARTNER_LATENCY_MS)])
    stack.gunicorn(env, api_port)
    for number in (1, 2):
        stack.worker(env, number)
    _timed(result, "start servers, simulators, gunicorn, workers", started)

    started = time.monotonic()
    extract = work / "extract.csv"
    write_csv(extract, options.households, seed=options.seed)
    with extract.open("rb") as stream:
        registry.import_households(svc, stream, extract.name, officers.maker)
    plan = planning.plan_cycle(svc, PROGRAM, PERIOD, officers.maker)
    for batch_id in plan.batches_created:
        batches.submit(svc, batch_id, officers.maker)
        if batches.approve(svc, batch_id, officers.approver).status != "approved":
            batches.approve(svc, batch_id, officers.second)
    result.batches, result.instructions = len(plan.batches_created), plan.instructions_created
    _timed(result, f"import {options.households:,}, plan, approve {result.batches} batches",
           started)

    world = chaos_faults.World(stack, svc, operator, env, api, keys, sims, rng)
    started = time.monotonic()
    releaser = threading.Thread(target=_release_all, name="releaser",
                                args=(svc, officers.maker, plan.batches_created, result,
                                      options.faults), daemon=True)
    releaser.start()
    _inject(world, result, started)
    releaser.join()
    _timed(result, f"release under {options.faults} faults", started)

    started = time.monotonic()
    _recover(stack, env, sims, svc, result)
    _timed(result, "recovery until quiet", started)
    result.replay_answers = world.replay_answers

    started = time.monotonic()
    verdict = judge(database_url, {code: stack.journal(code) for code in PARTNERS})
    ledger = subprocess.run([sys.executable, "-m", "disbursement.cli", "ledger", "check",
                             "--program", PROGRAM, "--period", PERIOD], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    verdict.ledger_exit, verdict.ledger_output = ledger.returncode, ledger.stdout + ledger.stderr
    result.verdict = verdict
    _timed(result, "verdict (journals, database, ledger check)", started)
    svc.engine.dispose()


def _release_all(svc, maker, batch_ids: list[int], result: Run, fault_count: int) -> None:
    """Releases the batches one by one, paced by the faults injected so far so
    that releases, dispatch and confirmations span RELEASE_SHARE of the faults;
    a release that meets a fault (PostgreSQL restarting) is pressed again."""
    for number, batch_id in enumerate(batch_ids):
        due = number * fault_count * RELEASE_SHARE / max(1, len(batch_ids))
        while len(result.faults) < due:
            time.sleep(0.05)
        while True:
            try:
                batches.release(svc, batch_id, maker)
                break
            except Exception as exc:  # any fault: the officer presses the button again
                result.release_retries += 1
                log(f"release of batch {batch_id} failed ({type(exc).__name__}); retrying")
                time.sleep(RELEASE_RETRY_SECONDS)


def _inject(world: chaos_faults.World, result: Run, started: float) -> None:
    for number, kind in enumerate(chaos_faults.schedule(result.options.faults, world.rng),
                                  start=1):
        world.pause(FAULT_GAP_SECONDS)
        at = time.monotonic() - started
        try:
            note = chaos_faults.FAULTS[kind](world)
        except Exception as exc:
            note = f"the fault itself failed: {type(exc).__name__}: {exc}"
        took = time.monotonic() - started - at
        result.faults.append({"n": number, "kind": kind, "at": round(at, 1),
                              "seconds": round(took, 1), "note": note})
        log(f"fault {number} at {at:.1f}s: {kind}: {note}")


def _recover(stack: Stack, env: dict[str, str], sims: dict[str, str], svc, result: Run) -> None:
    """README's Operations: restart what died, then `disburse recover` (or, until
    it exists, `disburse outbox sweep` and a retry of each dead letter); then
    wait until nothing is pending anywhere, re-running the recovery now and then."""
    for code in sims:
        httpx.post(f"{sims[code]}/_sim/faults", timeout=10, json={
            "error_rate": 0, "timeout_rate": 0, "lost_request_rate": 0,
            "duplicate_callbacks": False, "out_of_order_callbacks": False}).raise_for_status()
    for name, proc in stack.procs.items():
        if not proc.alive():
            result.recovery.append(f"{name} had died: restarted")
            proc.start()
    deadline = time.monotonic() + QUIET_TIMEOUT_SECONDS
    while True:
        _operator_recovery(env, result)
        window = min(RECOVER_EVERY_SECONDS, deadline - time.monotonic())
        if wait_for(lambda: _quiet(svc, sims), max(window, 0), interval=1.0):
            result.quiet = True
            return
        if time.monotonic() >= deadline:
            result.recovery.append(f"not quiet after {QUIET_TIMEOUT_SECONDS:.0f}s: "
                                   f"{_pending_summary(svc, sims)}")
            return


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "disbursement.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _operator_recovery(env: dict[str, str], result: Run) -> None:
    if _cli(env, "recover", "--help").returncode == 0:
        done = _cli(env, "recover")
        result.recovery.append(f"disburse recover: exit {done.returncode}")
        return
    done = _cli(env, "outbox", "sweep")
    note = f"disburse outbox sweep (no `disburse recover` yet): exit {done.returncode}"
    dead = _cli(env, "deadletters", "list")
    retried = 0
    for line in dead.stdout.splitlines():
        words = line.split()
        if words and words[0].isdigit():
            retried += _cli(env, "deadletters", "retry", words[0]).returncode == 0
    result.recovery.append(note + (f"; {retried} dead letters retried" if retried else ""))


def _pending_summary(svc, sims: dict[str, str]) -> dict:
    with svc.uow() as session:
        outbox = session.execute(text(
            "SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar_one()
    states = {code: httpx.get(f"{url}/_sim/state", timeout=10).json() for code, url in sims.items()}
    return {"outbox_pending": outbox,
            "callbacks_pending": {c: s["callbacks_pending"] for c, s in states.items()},
            "partner_open": {c: s["by_status"].get("received", 0)
                             + s["by_status"].get("available", 0) for c, s in states.items()}}


def _quiet(svc, sims: dict[str, str]) -> bool:
    try:
        summary = _pending_summary(svc, sims)
    except Exception:
        return False
    return (summary["outbox_pending"] == 0
            and not any(summary["callbacks_pending"].values())
            and not any(summary["partner_open"].values()))


def at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
