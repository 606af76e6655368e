"""Job functions of the file exchange: importable at module level, taking a
partner code only, idempotent (a file is collected once, its updates carry
event ids)."""
from __future__ import annotations

from disbursement.jobs.tasks import services


def collect_partner_files(partner_code: str) -> dict:
    from disbursement.services.dispatch import file_collection

    return file_collection.collect(services(), partner_code).as_dict()


def collect_all_partner_files() -> list[dict]:
    """One collection per file partner; enqueue it on a schedule (cron, rq-scheduler)."""
    from disbursement.services.dispatch import file_collection

    svc = services()
    return [file_collection.collect(svc, code).as_dict()
            for code in file_collection.file_partners(svc)]
