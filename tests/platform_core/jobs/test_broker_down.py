"""POST /models/train with the broker down: 503 in the error shape, and no job left PENDING."""

from __future__ import annotations

import time

import pytest
import redis as redis_client

from platform_core.jobs.models import JobStatus, TrainingJob
from tests.faults import PrivateRedis, celery_broker, free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the publish runs on commit

URL = "/api/v1/models/train"


def test_train_with_the_broker_down_answers_503_and_leaves_no_pending_job(api_client, tenant):
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        for _ in range(2):  # the second request is not refused as "job in progress"
            started = time.monotonic()
            r = api_client.post(URL, {}, format="json")
            assert time.monotonic() - started < 2
            assert r.status_code == 503, r.content
            assert r["Retry-After"] == "30"
            error = r.json()["error"]
            assert error["code"] == "broker_unavailable" and "unavailable" in error["message"]
    jobs = TrainingJob.objects.for_tenant(tenant)
    assert [j.status for j in jobs] == [JobStatus.FAILED, JobStatus.FAILED]
    assert all(j.error.startswith("Not started: The task queue is unavailable") for j in jobs)


def test_train_with_the_broker_back_is_queued(api_client, tenant):
    broker = PrivateRedis()
    broker.start()
    try:
        with celery_broker(broker.url):
            r = api_client.post(URL, {}, format="json")
        assert r.status_code == 202, r.content
        job = TrainingJob.objects.for_tenant(tenant).get()
        assert job.status == JobStatus.PENDING
        # The message waits on the "ml" queue of the real broker.
        assert redis_client.Redis(port=broker.port).llen("ml") == 1
    finally:
        broker.kill()
