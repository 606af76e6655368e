"""Every job name the services may enqueue has a job function and an RQ entry
point, and an entry point run outside `disburse worker` refuses instead of
guessing its wiring."""
from __future__ import annotations

import pytest

from disbursement.jobs import worker
from disbursement.jobs.catalog import JOBS
from disbursement.services.ports import JobName


def test_every_job_name_has_a_job_function_and_an_rq_entry_point() -> None:
    assert set(JOBS) == set(JobName)
    assert set(worker.ENTRY_POINTS) == set(JobName)


def test_entry_points_are_module_level_functions_named_after_their_job() -> None:
    for job, entry in worker.ENTRY_POINTS.items():
        assert (entry.__module__, entry.__name__) == ("disbursement.jobs.worker", job.value)


def test_an_entry_point_outside_a_services_worker_refuses() -> None:
    with pytest.raises(worker.NoWorkerServices, match="outside `disburse worker`"):
        worker.dispatch_chunk(1)
