"""Test support for the file-based partners: a config where cash goes to the
SFTP partner DAMANE and bank transfers to the ISO 20022 bank CIHBANK, services
pointed at simulator processes, and helpers to plan, release and observe."""
from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from connectors.simulators.file_process import FileSimulatorProcess
from disbursement import settings as settings_module
from disbursement.bootstrap import Services
from disbursement.db.models import InboundMessage, LedgerLine, Transfer, TransferEvent
from disbursement.services.batches import approval as batches
from tests.support.cycle import approve, import_and_plan, partner_batch
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
FILE_PARTNERS = {"DAMANE": "sftp", "CIHBANK": "iso20022"}


def file_partner_config(tmp: Path) -> Path:
    """config/ with only the file partners, DAMANE the program default everywhere
    (so cash goes to it; bank transfers fall to CIHBANK, the one bank covering)."""
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    partners = tomllib.loads((config / "partners.toml").read_text())["partners"]
    lines = []
    for code in FILE_PARTNERS:
        lines.append(f"[partners.{code}]")
        for key, value in partners[code].items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    (config / "partners.toml").write_text("\n".join(lines))
    program = config / "programs" / "asd.toml"
    program.write_text(re.sub(r'"(\d\d)" = "[A-Z]+"', r'"\1" = "DAMANE"', program.read_text()))
    return config


def _toml_value(value) -> str:
    """Strings, numbers and lists read the same in JSON and TOML; tables (the
    fee table) are written inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@contextmanager
def simulator(protocol: str, code: str, tmp: Path, *args: str) -> Iterator[FileSimulatorProcess]:
    root = tmp / f"partner-{code}"
    root.mkdir()
    with FileSimulatorProcess.start(protocol, code, root, f"{code.lower()}-sftp-password", *args,
                                    log_path=tmp / f"sim-{code}.log") as sim:
        yield sim


def pointed_at(svc: Services, sims: list[FileSimulatorProcess]) -> Services:
    """The same settings, plus each simulator's URL, password and host key, read
    from environment variables the way production reads them."""
    env = {k: v for sim in sims for k, v in sim.settings_env().items()}
    loaded = settings_module.load({"DISBURSE_DATA_KEY": "AA==", **env})
    return svc.with_overrides(
        partner_urls={**svc.settings.partner_urls, **loaded.partner_urls},
        partner_sftp={**svc.settings.partner_sftp, **loaded.partner_sftp})


def plan_and_release(svc: Services, officers, path: Path, partner: str) -> int:
    """Imports, plans, approves and releases the partner's batch; returns its id."""
    batch_id = partner_batch(svc, import_and_plan(svc, officers, path), partner)
    approve(svc, officers, batch_id)
    batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()
    return batch_id


def statuses(svc: Services, batch_id: int) -> dict[str, tuple[str, str | None]]:
    with svc.uow() as session:
        return {ref: (status, reason) for ref, status, reason in session.execute(
            select(Transfer.reference, Transfer.status, Transfer.status_reason)
            .where(Transfer.batch_id == batch_id))}


def snapshot(svc: Services) -> dict:
    """Everything a partner file could change."""
    with svc.uow() as session:
        return {"transfers": sorted(session.execute(select(
                    Transfer.reference, Transfer.status, Transfer.status_reason,
                    Transfer.service_point, Transfer.updated_at)).all()),
                "events": session.execute(select(func.count()).select_from(TransferEvent)).scalar(),
                "inbound": session.execute(
                    select(func.count()).select_from(InboundMessage)).scalar(),
                "ledger_lines": session.execute(
                    select(func.count()).select_from(LedgerLine)).scalar()}


def released(file_svc: Services, officers, households: Path, sim: FileSimulatorProcess,
             partner: str, picked_up: str) -> tuple[Services, int]:
    """The partner's batch released and dispatched by services pointed at `sim`,
    and the partner holding every transfer (`picked_up` names that wait)."""
    svc = pointed_at(file_svc, [sim])
    batch_id = plan_and_release(svc, officers, households, partner)
    sent = statuses(svc, batch_id)
    assert sent and {s for s, _ in sent.values()} == {"sent"}
    wait_until(lambda: sim.state()["transfers"] == len(sent), picked_up)
    return svc, batch_id
