"""Ingestion while the broker is down: 2xx, events stored, the profile refresh delivered later.

The broker is a redis-server of the test's own (the machine's Redis is shared):
killed before the request, started again on the same port before the drain.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from platform_core.catalog.models import EndUser
from platform_core.events.models import Event
from platform_core.profiles.models import ProfileRefreshOutbox, UserProfile
from platform_core.profiles.services import profile_outbox_drain
from tests.faults import PrivateRedis, celery_broker, free_port
from tests.workers import worker_start, worker_stop

pytestmark = pytest.mark.django_db(transaction=True)  # the publish runs on commit

URL = "/api/v1/events"


def _batch(*users: str, start: int = 0) -> dict:
    return {
        "events": [
            {
                "event_id": f"e{start + n}",
                "user_id": user,
                "item_id": "i1",
                "type": "view",
                "timestamp": "2026-01-01T12:00:00Z",
            }
            for n, user in enumerate(users)
        ]
    }


def _outbox_users(tenant) -> list[str]:
    rows = ProfileRefreshOutbox.objects.for_tenant(tenant).values_list("user__external_id", flat=True)
    return sorted(rows)


def test_ingestion_with_the_broker_down_answers_2xx_at_once_and_keeps_the_refresh(api_client, tenant):
    # Nothing listens on this port: every publish is refused.
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        started = time.monotonic()
        r = api_client.post(URL, _batch("u1", "u2"), format="json")
        elapsed = time.monotonic() - started
        assert r.status_code == 201, r.content
        assert r.json()["inserted"] == 2
        assert Event.objects.for_tenant(tenant).count() == 2
        assert _outbox_users(tenant) == ["u1", "u2"]
        # One connection attempt, no retry loop (6 s with kombu's defaults).
        assert elapsed < 2, f"the request waited {elapsed:.1f}s on a broker that is down"
        # The drain with the broker still down sends nothing and keeps every row…
        assert profile_outbox_drain(now=timezone.now() + timezone.timedelta(hours=1)) == 0
        assert _outbox_users(tenant) == ["u1", "u2"]
        # …but drops the row of a user deleted meanwhile, even outside the ORM.
        u2 = EndUser.objects.for_tenant(tenant).get(external_id="u2").pk
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {EndUser._meta.db_table} WHERE id = %s", [u2])
        profile_outbox_drain(now=timezone.now() + timezone.timedelta(hours=1))
        assert ProfileRefreshOutbox.unscoped.filter(user_id=u2).count() == 0
        assert _outbox_users(tenant) == ["u1"]


@pytest.mark.worker
def test_a_refresh_lost_to_a_broker_outage_is_delivered_when_it_is_back(
    api_client, tenant, settings, tmp_path
):
    settings.PROFILE_REFRESH_DEBOUNCE_SECONDS = 1
    redis = PrivateRedis()
    redis.start()
    proc = None
    try:
        with celery_broker(redis.url):
            redis.kill()
            assert api_client.post(URL, _batch("u1", "u2"), format="json").status_code == 201
            assert _outbox_users(tenant) == ["u1", "u2"]
            assert not UserProfile.objects.for_tenant(tenant).exists()

            redis.start()  # the broker is back, empty: the outage lost every message
            log = tmp_path / "worker.log"
            env = {
                "CELERY_BROKER_URL": redis.url,
                "VAR_DIR": str(tmp_path / "worker-var"),
                "PROFILE_REFRESH_DEBOUNCE_SECONDS": "1",
            }
            proc = worker_start(env, log)
            # The beat's drain, run here: rows older than debounce + resend delay are sent again.
            assert profile_outbox_drain(now=timezone.now() + timezone.timedelta(hours=1)) == 2
            _wait_for_profiles(tenant, {"u1", "u2"}, log)
            assert _outbox_users(tenant) == []

            # With the broker up, a new user's refresh goes straight through and clears its row.
            assert api_client.post(URL, _batch("u3", start=10), format="json").status_code == 201
            _wait_for_profiles(tenant, {"u1", "u2", "u3"}, log)
            _wait_until(lambda: _outbox_users(tenant) == [], log, "the outbox row of u3 is deleted")
    finally:
        if proc is not None:
            worker_stop(proc)
        redis.kill()


def _wait_for_profiles(tenant, users: set[str], log: Path) -> None:
    def done() -> bool:
        got = UserProfile.objects.for_tenant(tenant).filter(computed_at__isnull=False)
        return set(got.values_list("user__external_id", flat=True)) == users

    _wait_until(done, log, f"profiles of {sorted(users)} computed")


def _wait_until(check, log: Path, what: str, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"not done after {timeout}s: {what}; worker log:\n{log.read_text()[-4000:]}")
