"""PostgreSQL restarted under traffic: no 500 once it is back; a training heartbeat rides it out.

The machine's PostgreSQL is shared, so the test never restarts it: every
connection goes through a TCP proxy (tests/faults.py) that drops them all and
refuses new ones for a while, which is what clients see of a restart.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.utils import timezone

from platform_core.jobs.models import JobStatus, TrainingJob
from platform_core.jobs.training import JobHeartbeat, _progress_reporter
from tests.factories import EndUserFactory, EventFactory, api_key_raw
from tests.faults import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)  # a server thread reads committed rows


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    """Every new connection of this process goes through a proxy that the test can cut."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "PostgreSQL stage only: on SQLite there is no database server whose connections could be cut; "
            "the PostgreSQL stage of .ci/run runs this with a TCP proxy in front of the server"
        )
    s = connection.settings_dict  # the dict every thread's connection is built from
    saved = (s["HOST"], s["PORT"])
    proxy = TcpProxy((s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)))
    connection.close()
    s["HOST"], s["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        proxy.close()
        s["HOST"], s["PORT"] = saved
        connection.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def live_server_url(db_proxy: TcpProxy) -> Iterator[str]:
    """Django's real WSGI handler in a thread: it runs close_old_connections per request (the test client does not)."""
    server: WSGIServer = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, key: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Api-Key {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_no_500_after_the_database_is_back(tenant, db_proxy: TcpProxy, live_server_url: str) -> None:
    user = EndUserFactory(tenant=tenant, external_id="u1")
    EventFactory(tenant=tenant, user=user)
    key = api_key_raw(tenant=tenant, scopes=("read",))
    url = f"{live_server_url}/api/v1/events?user_id=u1"
    # Traffic before: the server thread keeps its connection (CONN_MAX_AGE).
    assert [_get(url, key) for _ in range(5)] == [200] * 5

    # A restart between two requests: the kept connection is dead, its first use is checked.
    db_proxy.cut()
    time.sleep(0.5)
    db_proxy.restore()
    after = [_get(url, key) for _ in range(5)]
    assert after == [200] * 5, f"after the restart: {after}"

    # A restart under traffic: a retryable 503 in the error shape while it is down, never a 500.
    db_proxy.cut()
    during = [_get(url, key) for _ in range(3)]
    db_proxy.restore()
    assert set(during) <= {200, 503}, during
    assert [_get(url, key) for _ in range(5)] == [200] * 5


def test_a_heartbeat_rides_out_a_short_database_outage(tenant, db_proxy: TcpProxy) -> None:
    job = TrainingJob.objects.for_tenant(tenant).create(tenant=tenant, status=JobStatus.RUNNING, task_id="t")
    TrainingJob.unscoped.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    heartbeat = JobHeartbeat(job.pk, every=0.1)
    report = _progress_reporter(job.pk, min_interval=0)
    heartbeat.start()
    try:
        _until(lambda: _beat(job) > timezone.now() - timezone.timedelta(seconds=5))
        db_proxy.cut()
        time.sleep(0.2)
        report(SimpleNamespace(stage="train", epoch=1, epochs=3))  # skipped, not a failed job
        time.sleep(1.0)  # several beats fail meanwhile
        back = timezone.now()
        db_proxy.restore()
        _until(lambda: _beat(job) > back)
        assert heartbeat.is_alive() and not heartbeat.cancelled
        report(SimpleNamespace(stage="train", epoch=2, epochs=3))
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.progress["epoch"] == 2
    finally:
        heartbeat.stop()


def _beat(job: TrainingJob):  # noqa: ANN202
    for _ in range(3):  # the test's own connection went through the proxy too
        try:
            return TrainingJob.unscoped.values_list("heartbeat_at", flat=True).get(pk=job.pk)
        except Exception:  # noqa: BLE001 - a dropped connection: reconnect and read again
            connection.close()
    raise AssertionError("the database did not come back")


def _until(check, timeout: float = 10) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
