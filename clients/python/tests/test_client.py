"""platform_client against a live server of the platform (real HTTP, real database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from platform_client import ApiError, AsyncClient, Client, IngestResult, RecommendationList

from platform_core.events.models import Event
from platform_core.tenancy.models import Tenant
from platform_core.tenancy.services import api_key_create

T0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)


def _events(user: str, items: list[str], start: dt.datetime = T0) -> list[dict]:
    return [
        {"user_id": user, "item_id": item, "type": "view", "timestamp": start + dt.timedelta(minutes=n)}
        for n, item in enumerate(items)
    ]


def _catalog(client: Client) -> None:
    client.upsert_items(
        [{"item_id": f"sku-{n}", "attributes": {"category": "shoes" if n % 2 else "bags", "price": 10.0 + n}}
         for n in range(6)]
    )  # fmt: skip


def test_round_trip_as_a_client_app_uses_it(live_server, shop: Tenant, key: str) -> None:
    with Client(live_server.url, key) as client:
        _catalog(client)
        assert client.upsert_users([{"user_id": "alice", "attributes": {"country": "DE"}}]).created == 1
        sent = client.send_events(
            _events("alice", ["sku-1", "sku-2", "sku-3"]) + _events("bob", ["sku-1", "sku-3"]), batch_size=2
        )
        assert sent == IngestResult(received=5, inserted=5, duplicates=0, users_created=1, items_created=0)
        popular = client.popular(window="1d", k=3)
        # sku-1 and sku-3 were seen by two users each, sku-2 by one: the ranking is by events.
        assert [p.item_id for p in popular][:2] == ["sku-1", "sku-3"]
        recs = client.recommendations("alice", k=3, explain=True)
        assert isinstance(recs, RecommendationList) and recs.recommendation_id
        assert recs.user_id == "alice" and len(recs.items) <= 3
        if recs.items:
            first = recs.items[0]
            assert first.explanation is not None
            assert client.feedback(recs.recommendation_id, first.item_id, "click").recorded is True
        with pytest.raises(ApiError) as err:  # similar items need a trained model's vectors
            client.similar("sku-1", k=2)
        assert (err.value.status, err.value.code) == (404, "no_active_model")
        erased = client.erase_user("alice")
        assert erased.deleted["events.Event"] == 3
        with pytest.raises(ApiError) as err:
            client.recommendations("alice")
        assert (err.value.status, err.value.code) == (404, "not_found")


def test_a_retried_batch_is_stored_once(live_server, shop: Tenant, key: str) -> None:
    """The first answer is lost after the server stored the batch; the retry sends the same ids."""

    class LoseFirstAnswer(httpx.HTTPTransport):
        lost = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.method == "POST" and not self.lost:
                response.read()
                self.lost = True
                raise httpx.ReadError("connection reset after the server answered")
            return response

    transport = LoseFirstAnswer()
    with Client(live_server.url, key, transport=transport, backoff=0.01) as client:
        result = client.send_events(_events("carol", ["sku-1", "sku-2", "sku-3"]))
    assert transport.lost
    assert (result.inserted, result.duplicates) == (0, 3)  # the retry's answer: all already stored
    assert Event.objects.for_tenant(shop).count() == 3


def test_errors_carry_code_message_and_fields(live_server, shop: Tenant, key: str) -> None:
    with Client(live_server.url, key) as client:
        bad = {"event_id": "e-1", "user_id": "dave", "item_id": "sku-1", "type": "view",
               "timestamp": "2026-01-05T10:00:00"}  # fmt: skip
        with pytest.raises(ApiError) as err:
            client.send_events([bad])
    assert err.value.status == 400 and err.value.code == "invalid_events"
    assert list(err.value.fields) == ["events[0].timestamp"]
    assert Event.objects.for_tenant(shop).count() == 0


def test_another_tenants_key_sees_nothing(live_server, shop: Tenant, other_shop: Tenant, key: str) -> None:
    with Client(live_server.url, key) as client:
        client.send_events(_events("erin", ["sku-1"]))
    other_key = api_key_create(tenant=other_shop, scopes=["read", "admin"]).raw_key
    with Client(live_server.url, other_key) as other:
        for call in (lambda: other.recommendations("erin"), lambda: other.erase_user("erin")):
            with pytest.raises(ApiError) as err:
                call()
            assert (err.value.status, err.value.code) == (404, "not_found")
    assert Event.objects.for_tenant(shop).count() == 1


def test_train_and_job(live_server, shop: Tenant, key: str) -> None:
    with Client(live_server.url, key) as client:
        job = client.train({"epochs": 1})
        assert job.status == "pending" and job.kind == "train"
        again = client.job(job.job_id)
        assert again.job_id == job.job_id and not again.done
        with pytest.raises(ApiError) as err:
            client.job(job.job_id + 1000)
        assert err.value.code == "not_found"


def test_async_twin(live_server, shop: Tenant, key: str) -> None:
    async def run() -> tuple[IngestResult, RecommendationList]:
        async with AsyncClient(live_server.url, key) as client:
            sent = await client.send_events(_events("frank", ["sku-1", "sku-2"]), batch_size=1)
            return sent, await client.recommendations("frank", k=2)

    sent, recs = asyncio.run(run())
    assert (sent.received, sent.inserted) == (2, 2)
    assert recs.user_id == "frank"


# --------------------------------------------------------------------------- retries (a tiny real HTTP peer)
@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[float]]]:
    """Answers 429 (Retry-After: 0.2), then 503 (no Retry-After), then 200; records arrival times."""
    arrivals: list[float] = []
    answers = [(429, {"Retry-After": "0.2"}), (503, {}), (200, {})]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            arrivals.append(time.monotonic())
            status, headers = answers[min(len(arrivals), len(answers)) - 1]
            body = (
                {"window": "7d", "items": [{"item_id": "x", "score": 1.0, "rank": 1}]}
                if status == 200
                else {"error": {"code": "throttled" if status == 429 else "unavailable", "message": "later",
                                "fields": {}}}
            )  # fmt: skip
            raw = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", arrivals
    server.shutdown()


def test_429_and_503_are_retried_honouring_retry_after(flaky_server) -> None:
    url, arrivals = flaky_server
    with Client(url, "k", backoff=0.01) as client:
        popular = client.popular()
    assert [p.item_id for p in popular] == ["x"]
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.2  # waited as Retry-After said


def test_retries_give_up_with_the_last_error(flaky_server) -> None:
    url, arrivals = flaky_server
    with Client(url, "k", max_retries=1, backoff=0.01) as client, pytest.raises(ApiError) as err:
        client.popular()
    assert (err.value.status, err.value.code) == (503, "unavailable")
    assert len(arrivals) == 2


def test_connection_errors_are_retried_then_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = Client(f"http://127.0.0.1:{port}", "k", max_retries=2, backoff=0.01)
    with client, pytest.raises(ApiError) as err:
        client.popular()
    assert (err.value.status, err.value.code) == (0, "connection_error")
