"""A profiles job split into user pk ranges: one result, one final status, a failed part fails the job."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from platform_core.jobs import tasks
from platform_core.jobs.models import JobKind, JobStatus
from platform_core.jobs.services import training_job_request
from platform_core.profiles import services
from platform_core.profiles.models import UserProfile
from platform_core.profiles.partitions import (
    profile_job_part_run,
    profile_job_run_inline,
    profile_job_start,
    profile_partitions,
)
from platform_core.profiles.services import profile_build_bulk

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


@pytest.fixture
def crowd(tenant):
    """Seven users; user k has k views of one book, an hour apart."""
    book = Item.objects.for_tenant(tenant).create(
        tenant=tenant, external_id="b", attributes={"title": "B", "category": "books"}
    )
    for k in range(7):
        user = EndUser.objects.for_tenant(tenant).create(tenant=tenant, external_id=f"u{k}")
        for j in range(k):
            Event.objects.for_tenant(tenant).create(
                tenant=tenant,
                event_id=f"e{k}-{j}",
                user=user,
                item=book,
                type="view",
                timestamp=T0 + dt.timedelta(hours=j),
            )
    return tenant


def _stored(tenant) -> dict:
    return {
        p.user.external_id: (p.interests, p.trajectory, p.activity, p.segment, p.features, p.n_events)
        for p in UserProfile.objects.for_tenant(tenant).select_related("user")
    }


def test_ranges_cover_every_user_once_in_equal_shares(crowd):
    pks = list(EndUser.objects.for_tenant(crowd).order_by("pk").values_list("pk", flat=True))
    # 7 users in 3 parts: 3 + 2 + 2, contiguous and in pk order.
    assert profile_partitions(tenant=crowd, parts=3) == [
        (pks[0], pks[2]),
        (pks[3], pks[4]),
        (pks[5], pks[6]),
    ]
    # At least 4 users per part: 7 // 4 = 1 range.
    assert profile_partitions(tenant=crowd, parts=3, min_users=4) == [(pks[0], pks[6])]


def test_a_job_in_three_parts_writes_the_one_pass_profiles_and_succeeds_once(crowd):
    job = training_job_request(tenant=crowd, kind=JobKind.PROFILES, enqueue=False)
    done = profile_job_run_inline(job_id=job.pk, parts=3)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result["profiles"] == 7
    assert sorted(done.result["parts"]) == ["0", "1", "2"]
    assert [p["profiles"] for _, p in sorted(done.result["parts"].items())] == [3, 2, 2]
    assert done.progress["stage"] == "done" and done.progress["epoch"] == 7
    parted = _stored(crowd)
    UserProfile.objects.for_tenant(crowd).delete()
    profile_build_bulk(tenant=crowd, now=done.started_at)
    assert parted == _stored(crowd)
    assert parted["u3"][5] == 3 and parted["u0"][3] == "inactive"


def test_a_redelivered_part_is_counted_once(crowd):
    job = training_job_request(tenant=crowd, kind=JobKind.PROFILES, enqueue=False)
    ranges = profile_job_start(job_id=job.pk, parts=2)
    assert profile_job_part_run(job_id=job.pk, part=0, lo=ranges[0][0], hi=ranges[0][1]) is False
    assert profile_job_part_run(job_id=job.pk, part=0, lo=ranges[0][0], hi=ranges[0][1]) is False
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and list(job.result["parts"]) == ["0"]
    # Progress over the whole job: part 0 holds 4 of the 7 users.
    assert (job.progress["epoch"], job.progress["epochs"]) == (4, 7)
    assert profile_job_part_run(job_id=job.pk, part=1, lo=ranges[1][0], hi=ranges[1][1]) is True
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result["profiles"] == 7
    # A late duplicate after the end changes nothing.
    assert profile_job_part_run(job_id=job.pk, part=1, lo=ranges[1][0], hi=ranges[1][1]) is False
    assert UserProfile.objects.for_tenant(crowd).count() == 7


def test_a_failed_part_fails_the_job_naming_the_part_and_the_others_stop(crowd, monkeypatch):
    job = training_job_request(tenant=crowd, kind=JobKind.PROFILES, enqueue=False)
    ranges = profile_job_start(job_id=job.pk, parts=2)
    real = services.profile_compute

    def broken(**kwargs):
        if kwargs["external_id"] == "u5":
            raise ValueError("bad context in event e5-0")
        return real(**kwargs)

    monkeypatch.setattr(services, "profile_compute", broken)
    assert profile_job_part_run(job_id=job.pk, part=1, lo=ranges[1][0], hi=ranges[1][1]) is False
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    lo, hi = ranges[1]
    assert job.error.startswith(
        f"Profiles part 1 (users pk {lo}–{hi}) failed: ValueError: bad context in event e5-0"
    )
    assert job.progress["stage"] == "failed"
    monkeypatch.setattr(services, "profile_compute", real)
    # The other part finds the job failed and does nothing.
    assert profile_job_part_run(job_id=job.pk, part=0, lo=ranges[0][0], hi=ranges[0][1]) is False
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "0" not in job.result["parts"]


def test_an_empty_tenant_succeeds_without_parts(tenant):
    job = training_job_request(tenant=tenant, kind=JobKind.PROFILES, enqueue=False)
    assert profile_job_start(job_id=job.pk) == []
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result["profiles"] == 0


def test_the_job_task_enqueues_one_part_per_range_on_the_profiles_queue(crowd, settings, monkeypatch):
    settings.PROFILES_BUILD_PARTS = 2
    settings.PROFILES_PART_MIN_USERS = 3
    sent = []
    monkeypatch.setattr(
        tasks.build_profiles_part, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    job = training_job_request(tenant=crowd, kind=JobKind.PROFILES, enqueue=False)
    assert tasks.build_profiles.apply(args=[job.pk]).get() == {"job": job.pk, "parts": 2}
    pks = list(EndUser.objects.for_tenant(crowd).order_by("pk").values_list("pk", flat=True))
    assert sent == [
        ([job.pk, 0, pks[0], pks[3]], "profiles"),
        ([job.pk, 1, pks[4], pks[6]], "profiles"),
    ]
    # A duplicate delivery of the job message plans nothing.
    assert tasks.build_profiles.apply(args=[job.pk]).get() is None and len(sent) == 2
    for args, _queue in sent:
        tasks.build_profiles_part.apply(args=args).get()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result["profiles"] == 7


def test_the_profiles_worker_code_never_imports_tensorflow():
    """The default,profiles worker forks (prefork, concurrency 2): safe only without TensorFlow loaded."""
    code = (
        "import sys, django; django.setup()\n"
        "import platform_core.profiles.partitions, platform_core.profiles.tasks, platform_core.jobs.tasks\n"
        "import mlcore.artifacts, mlcore.inference\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "platform_core.settings"},
    )
    assert out.stdout.split()[-2:] == ["False", "False"], out.stderr[-2000:]


def test_the_command_builds_in_process_and_records_a_job(crowd):
    from io import StringIO

    from django.core.management import call_command

    from platform_core.jobs.models import TrainingJob

    out = StringIO()
    call_command("build_profiles", crowd.slug, stdout=out)
    job = TrainingJob.objects.for_tenant(crowd).get(kind=JobKind.PROFILES)
    assert job.status == JobStatus.SUCCEEDED and job.worker == "inline"
    assert f"job {job.pk} succeeded" in out.getvalue() and job.result["profiles"] == 7
    assert UserProfile.objects.for_tenant(crowd).count() == 7


def test_a_failed_plan_fails_the_claimed_job(crowd, monkeypatch):
    from platform_core.profiles import partitions

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(partitions, "profile_partitions", broken)
    job = training_job_request(tenant=crowd, kind=JobKind.PROFILES, enqueue=False)
    with pytest.raises(RuntimeError):
        profile_job_start(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "Profiles job planning failed: RuntimeError: database went away"
