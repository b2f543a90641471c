"""The operators' console pages: live job list, actions, metrics chart, monitoring."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from platform_core.jobs.models import (
    JobKind,
    JobStatus,
    ModelVersion,
    TenantSchedule,
    TrainingJob,
    VersionState,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.force_login(user)
    return client


def test_job_list_refreshes_while_a_job_runs_and_shows_progress(admin_client, tenant):
    TrainingJob.objects.for_tenant(tenant).create(
        tenant=tenant,
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        progress={"stage": "epoch", "epoch": 3, "epochs": 10, "metric": 0.25, "eta_seconds": 42},
    )
    html = admin_client.get("/admin/jobs/trainingjob/").content.decode()
    assert '<meta http-equiv="refresh"' in html
    assert '<progress value="3" max="10">' in html and "ETA 42s" in html


def test_job_list_does_not_refresh_when_idle(admin_client, tenant):
    TrainingJob.objects.for_tenant(tenant).create(tenant=tenant, status=JobStatus.FAILED, error="boom")
    html = admin_client.get("/admin/jobs/trainingjob/").content.decode()
    assert '<meta http-equiv="refresh"' not in html
    assert "boom" in html


def test_retrain_now_and_cancel_actions(admin_client, tenant, broker, django_capture_on_commit_callbacks):
    old = TrainingJob.objects.for_tenant(tenant).create(tenant=tenant, status=JobStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(
            "/admin/jobs/trainingjob/", {"action": "retrain_now", "_selected_action": [old.pk]}, follow=True
        )
    new = TrainingJob.objects.for_tenant(tenant).get(status=JobStatus.PENDING, kind=JobKind.TRAIN)
    assert new.requested_by == "console:root"
    admin_client.post(
        "/admin/jobs/trainingjob/", {"action": "cancel", "_selected_action": [new.pk]}, follow=True
    )
    new.refresh_from_db()
    assert new.status == JobStatus.CANCELLED


def test_metrics_chart_is_inline_svg(admin_client, tenant):
    for value in (0.1, 0.2):
        ModelVersion.objects.for_tenant(tenant).create(
            tenant=tenant,
            algorithm="transformer",
            artifact_path="x",
            state=VersionState.RETIRED,
            validation_metric="val_ndcg@10",
            metrics={"transformer": {"val_ndcg@10": value}, "popularity": {"val_ndcg@10": 0.05}},
        )
    html = admin_client.get(f"/admin/jobs/modelversion/chart/?tenant={tenant.slug}").content.decode()
    assert "<svg" in html and "<polyline" in html
    assert "transformer 0.2000" in html and "popularity 0.0500" in html
    assert "<script" not in html.split("<svg", 1)[1]


def test_monitoring_says_plainly_when_no_worker_answers(admin_client, broker):
    # A private broker: a developer's running worker must not answer here.
    html = admin_client.get("/admin/jobs/trainingjob/monitoring/").content.decode()
    assert "No worker answered." in html
    for queue in ("default", "ml", "profiles"):
        assert f"<td>{queue}</td>" in html


def test_schedules_are_editable(admin_client, tenant):
    schedule = TenantSchedule.objects.create(tenant=tenant)
    response = admin_client.post(
        f"/admin/jobs/tenantschedule/{schedule.pk}/change/",
        {"tenant": tenant.pk, "enabled": "on", "retrain_every_hours": 12, "profiles_every_hours": 1},
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.retrain_every_hours, schedule.profiles_every_hours) == (12, 1)
    assert schedule.updated_by.username == "root"
