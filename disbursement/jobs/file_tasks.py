"""Job functions of the file exchange: they take the Services they run with and
a partner code only, and are idempotent (a file is collected once, its updates
carry event ids)."""
from __future__ import annotations

from disbursement.services.dispatch import file_collection
from disbursement.services.ports import Services


def collect_partner_files(svc: Services, partner_code: str) -> dict:
    return file_collection.collect(svc, partner_code).as_dict()


def collect_all_partner_files(svc: Services) -> list[dict]:
    """One collection per file partner; enqueue it on a schedule (cron, rq-scheduler)."""
    return [file_collection.collect(svc, code).as_dict()
            for code in file_collection.file_partners(svc)]
