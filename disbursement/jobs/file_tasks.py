"""Job functions of the file exchange: they take the Services they run with and
a partner code only, and are idempotent (a file is collected once, its updates
carry event ids)."""
from __future__ import annotations

from disbursement.services.dispatch import file_collection
from disbursement.services.ports import JobName, Services


def collect_partner_files(svc: Services, partner_code: str) -> dict:
    return file_collection.collect(svc, partner_code).as_dict()


def collect_all_partner_files(svc: Services) -> dict:
    """The scheduler's job: one collection job per file partner, so that a
    partner whose server is down (or whose secrets are missing) fails and
    retries on its own while the others are collected."""
    codes = file_collection.file_partners(svc)
    for code in codes:
        svc.queue.enqueue(JobName.COLLECT_PARTNER_FILES, code)
    return {"enqueued": codes}
