"""Erasure receipts (``GET /api/v1/erasures/{id}``) and task results that never keep an erased id."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from platform_core.catalog.models import ErasureReceipt
from platform_core.catalog.services import enduser_erase, erasure_subject_hash
from platform_core.celery import app
from platform_core.jobs.models import ModelVersion, TrainingJob, VersionState
from platform_core.profiles.services import profile_refresh_request
from tests.factories import EndUserFactory, EventFactory

pytestmark = pytest.mark.django_db


def _version(tenant, *, state: str, started: dt.datetime) -> ModelVersion:
    job = TrainingJob.objects.for_tenant(tenant).create(tenant=tenant, status="succeeded", started_at=started)
    return ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant, job=job, algorithm="transformer", artifact_path=f"x/{job.pk}", state=state
    )


def test_delete_stores_a_receipt_served_to_admin_keys_of_its_tenant_only(
    api_client_for, tenant, other_tenant, settings
):
    settings.ERASURE_RETRAIN_WINDOW_HOURS = 6
    before = _version(tenant, state=VersionState.RETIRED, started=timezone.now() - dt.timedelta(days=2))
    user = EndUserFactory(tenant=tenant, external_id="bob")
    EventFactory(tenant=tenant, user=user)
    EventFactory(tenant=tenant, user=user)
    # Trained after bob's events arrived: one retired, one serving.
    old = _version(tenant, state=VersionState.RETIRED, started=timezone.now() + dt.timedelta(seconds=1))
    active = _version(tenant, state=VersionState.ACTIVE, started=timezone.now() + dt.timedelta(seconds=2))
    admin = api_client_for(tenant, scopes=["admin"])

    r = admin.delete("/api/v1/users/bob")
    assert r.status_code == 200
    erasure_id = r.json()["erasure_id"]
    body = admin.get(f"/api/v1/erasures/{erasure_id}").json()
    assert body["counts"] == {"catalog.EndUser": 1, "events.Event": 2}
    assert body["model_versions"] == [old.pk, active.pk]  # not `before`: it predates bob's events
    assert before.pk not in body["model_versions"]
    erased = dt.datetime.fromisoformat(body["erased_at"])
    assert dt.datetime.fromisoformat(body["retrain_due_by"]) - erased == dt.timedelta(hours=6)
    assert body["retrain_pending"] is True and body["retrained_at"] is None
    # A keyed hash, never the id; the same id in another tenant hashes differently.
    assert "bob" not in str(body)
    assert body["subject_hash"] == erasure_subject_hash(tenant=tenant, external_id="bob")
    assert body["subject_hash"] != erasure_subject_hash(tenant=other_tenant, external_id="bob")
    assert len(body["subject_hash"]) == 64

    # Scope: admin only. Isolation: another tenant's id reads exactly like a missing one.
    assert (
        api_client_for(tenant, scopes=["read", "ingest"]).get(f"/api/v1/erasures/{erasure_id}").status_code
        == 403
    )
    theirs = api_client_for(other_tenant, scopes=["admin"]).get(f"/api/v1/erasures/{erasure_id}")
    missing = admin.get(f"/api/v1/erasures/{erasure_id + 1000}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


def test_no_retrain_is_due_when_no_serving_version_saw_the_user(tenant):
    user = EndUserFactory(tenant=tenant, external_id="carol")
    EventFactory(tenant=tenant, user=user)
    _version(tenant, state=VersionState.ACTIVE, started=timezone.now() - dt.timedelta(days=1))
    receipt = enduser_erase(tenant=tenant, external_id="carol")
    assert receipt.model_versions == [] and receipt.retrain_due_by is None
    assert not receipt.retrain_pending


@pytest.fixture
def stored_eager_results(monkeypatch):
    """Tasks run in process and store their result rows through the real django-db backend."""
    from platform_core.profiles.tasks import refresh_users

    # A bound task read task_store_eager_result when the app was finalized: set it on the task.
    monkeypatch.setattr(refresh_users, "store_eager_result", True)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_profile_refresh_task_results_carry_internal_ids_only(
    tenant, stored_eager_results, django_capture_on_commit_callbacks
):
    user = EndUserFactory(tenant=tenant, external_id="dave-the-customer")
    EventFactory(tenant=tenant, user=user)
    with django_capture_on_commit_callbacks(execute=True):
        profile_refresh_request(tenant=tenant, user_pks=[user.pk])
    row = TaskResult.objects.get(task_name="profiles.refresh_users")
    assert row.status == "SUCCESS"
    assert str(user.pk) in row.task_args
    assert "dave-the-customer" not in f"{row.task_args}{row.task_kwargs}{row.result}"


def test_erasure_scrubs_kept_task_results_that_name_the_user(tenant):
    # What an older release (external ids as arguments) or an error message left behind.
    TaskResult.objects.create(
        task_id="t-old",
        task_name="profiles.refresh_users",
        task_args="\"[1, ['erin', 'frank']]\"",
        result="2",
    )
    TaskResult.objects.create(
        task_id="t-err", task_name="x", task_args='"[]"', result='{"exc_message": ["No user \'erin\'."]}'
    )
    TaskResult.objects.create(task_id="t-other", task_name="x", task_args="\"[1, ['erinna']]\"", result="1")
    EndUserFactory(tenant=tenant, external_id="erin")

    receipt = enduser_erase(tenant=tenant, external_id="erin")

    assert receipt.counts["django_celery_results.TaskResult"] == 2
    rows = {r.task_id: r for r in TaskResult.objects.all()}
    assert "erin'" not in rows["t-old"].task_args and rows["t-old"].result == "2"
    assert "erin" not in rows["t-err"].result
    # Another user whose id merely contains the letters is left alone.
    assert rows["t-other"].task_args == "\"[1, ['erinna']]\""
    assert ErasureReceipt.objects.for_tenant(tenant).count() == 1


def test_the_console_shows_receipts_read_only_and_only_of_the_staff_members_tenants(
    client, tenant, other_tenant
):
    from django.contrib.auth.models import Permission, User

    from platform_core.tenancy.models import TenantMembership

    EndUserFactory(tenant=tenant, external_id="gus")
    EndUserFactory(tenant=other_tenant, external_id="hal")
    mine = enduser_erase(tenant=tenant, external_id="gus")
    theirs = enduser_erase(tenant=other_tenant, external_id="hal")
    user = User.objects.create_user("auditor", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_erasurereceipt"))
    TenantMembership.objects.create(tenant=tenant, user=user)
    client.force_login(user)
    assert client.get(f"/admin/catalog/erasurereceipt/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/catalog/erasurereceipt/{theirs.pk}/change/").status_code != 200
    assert client.get("/admin/catalog/erasurereceipt/add/").status_code == 403
    assert client.post(f"/admin/catalog/erasurereceipt/{mine.pk}/delete/").status_code == 403
    assert ErasureReceipt.objects.for_tenant(tenant).filter(pk=mine.pk).exists()
