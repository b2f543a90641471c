"""POST /api/v1/models/train, GET /api/v1/jobs/{id}, GET /api/v1/models: scopes, errors, isolation."""

from __future__ import annotations

import pytest

from platform_core.jobs.models import JobStatus, ModelVersion, TrainingJob, VersionState

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def test_train_needs_the_admin_scope(tenant, api_client_for):
    client = api_client_for(tenant, scopes=("read", "ingest"))
    response = client.post("/api/v1/models/train", {}, format="json")
    assert response.status_code == 403
    assert "'admin' scope" in _error(response)["message"]
    assert not TrainingJob.objects.for_tenant(tenant).exists()


def test_train_returns_202_with_the_job_and_enqueues_on_commit(
    tenant, api_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.post("/api/v1/models/train", {"config": {"epochs": 2}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    job = TrainingJob.objects.for_tenant(tenant).get()
    assert body["job_id"] == job.pk
    assert body["status"] == "pending" and body["kind"] == "train"
    assert body["config"] == {"epochs": 2}
    assert job.requested_by.startswith("api-key:")
    assert len(callbacks) == 1


def test_a_second_training_request_is_409(tenant, api_client):
    first = api_client.post("/api/v1/models/train", {}, format="json").json()
    response = api_client.post("/api/v1/models/train", {}, format="json")
    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "job_in_progress"
    assert f"job {first['job_id']}" in error["message"]
    assert TrainingJob.objects.for_tenant(tenant).count() == 1


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"config": {"epochs": 1000}}, "config.epochs", "must be between 1 and 200"),
        ({"config": {"colour": "red"}}, "config.colour", "is not a training option"),
        ({"config": "fast"}, "config", ""),
    ],
)
def test_bad_options_are_400_naming_the_field_and_write_nothing(tenant, api_client, body, field, rule):
    response = api_client.post("/api/v1/models/train", body, format="json")
    assert response.status_code == 400
    error = _error(response)
    assert field in error["fields"]
    assert rule in " ".join(error["fields"][field])
    assert not TrainingJob.objects.for_tenant(tenant).exists()


def test_job_detail_and_tenant_isolation(tenant, other_tenant, api_client, other_client):
    job = TrainingJob.objects.for_tenant(tenant).create(
        tenant=tenant,
        status=JobStatus.FAILED,
        error="Not enough data to train: need 10 users",
        progress={"stage": "failed"},
    )
    response = api_client.get(f"/api/v1/jobs/{job.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["job_id"] == job.pk and body["status"] == "failed"
    assert body["error"] == "Not enough data to train: need 10 users"
    # Tenant B: the same 404 as an id that does not exist.
    theirs = other_client.get(f"/api/v1/jobs/{job.pk}")
    missing = other_client.get(f"/api/v1/jobs/{job.pk + 1000}")
    assert theirs.status_code == missing.status_code == 404
    assert _error(theirs)["code"] == _error(missing)["code"] == "not_found"
    assert theirs.json()["error"]["message"].replace(str(job.pk), "N") == missing.json()["error"][
        "message"
    ].replace(str(job.pk + 1000), "N")


def test_models_lists_versions_and_the_active_one_per_tenant(tenant, other_tenant, api_client, other_client):
    old = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path="a/1",
        state=VersionState.RETIRED,
        metrics={"transformer": {"val_ndcg@10": 0.2}},
        validation_metric="val_ndcg@10",
    )
    active = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path="a/2",
        state=VersionState.ACTIVE,
        metrics={"transformer": {"val_ndcg@10": 0.3}},
        validation_metric="val_ndcg@10",
        gate_passed=True,
    )
    body = api_client.get("/api/v1/models").json()
    assert body["active_version_id"] == active.pk
    assert [v["version_id"] for v in body["results"]] == [active.pk, old.pk]
    assert body["results"][0]["active"] is True and body["results"][1]["active"] is False
    assert body["results"][0]["metrics"] == {"transformer": {"val_ndcg@10": 0.3}}
    assert other_client.get("/api/v1/models").json() == {"active_version_id": None, "results": []}
    assert other_client.post(f"/api/v1/models/{active.pk}/promote").status_code == 404


def test_models_limit_is_validated(api_client):
    response = api_client.get("/api/v1/models?limit=0")
    assert response.status_code == 400
    assert "limit" in _error(response)["fields"]


def test_rollback_without_history_is_409(api_client):
    response = api_client.post("/api/v1/models/rollback")
    assert response.status_code == 409
    assert _error(response)["code"] == "no_previous_version"
