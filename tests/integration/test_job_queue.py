"""The job-queue adapters run jobs with the Services they were built for: an
RQ `ServicesWorker` with the worker's own, the in-process queue with the
Services (or the variant) that owns it."""
from __future__ import annotations

from rq.job import Job
from rq.serializers import JSONSerializer

from disbursement.bootstrap import build
from disbursement.jobs.queue import QUEUE_NAME, InProcessJobQueue, RQJobQueue
from disbursement.jobs.worker import ServicesWorker
from disbursement.services.ports import JobName
from tests.conftest import make_settings

MISSING_OUTBOX_ID = 999_999   # no such outbox item: the dispatch job skips it


def test_a_services_worker_runs_queued_jobs_with_its_services(pg_url, redis_url, tmp_path):
    svc = build(make_settings(tmp_path, pg_url, redis_url))
    queue = svc.queue
    assert isinstance(queue, RQJobQueue)
    queue.connection.delete(f"rq:queue:{QUEUE_NAME}")
    try:
        queue.enqueue(JobName.DISPATCH_CHUNK, MISSING_OUTBOX_ID)
        assert queue.figures()["rq_queued"] == 1
        ServicesWorker([QUEUE_NAME], connection=queue.connection, serializer=JSONSerializer,
                       services=svc).work(burst=True)
        finished = queue.queue.finished_job_registry.get_job_ids()
        results = [Job.fetch(job_id, connection=queue.connection,
                             serializer=JSONSerializer).return_value() for job_id in finished]
        assert {"outbox_id": MISSING_OUTBOX_ID, "sent": 0, "rejected": 0,
                "resolved_unknown": 0, "skipped": True} in results
        assert queue.figures()["rq_queued"] == 0
    finally:
        svc.engine.dispose()


def test_a_variant_of_the_services_has_a_queue_of_its_own(sqlite_svc):
    variant = sqlite_svc.with_overrides(connector_timeout_seconds=1.5)
    assert isinstance(sqlite_svc.queue, InProcessJobQueue)
    assert isinstance(variant.queue, InProcessJobQueue)
    assert variant.queue is not sqlite_svc.queue
    assert variant.settings.connector_timeout_seconds == 1.5
    variant.queue.enqueue(JobName.DISPATCH_CHUNK, MISSING_OUTBOX_ID)
    variant.queue.drain(timeout_seconds=30)
    assert variant.queue.failures == []
