"""What the sync and async clients share: the endpoints as request specs, parsing, the retry policy.

Each endpoint method builds a :class:`Call` and hands it to ``self._send``; the sync client's
``_send`` returns the parsed result, the async client's returns an awaitable of it, so both
clients have one definition of every endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from platform_client.errors import ApiError
from platform_client.models import (
    EraseResult,
    FeedbackResult,
    IngestResult,
    Job,
    PopularItem,
    RecommendationList,
    RiskScore,
    UpsertResult,
)

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    parse: Callable[[Any], Any]
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on connection errors, 429 and 503: exponential backoff with jitter, or ``Retry-After``."""

    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)

    def after_error(self, attempt: int, exc: Exception) -> float:
        """The wait before the next try after a connection error; ApiError when none is left."""
        if attempt >= self.max_retries:
            raise ApiError(status=0, code="connection_error", message=str(exc)) from exc
        return self.delay(attempt, None)

    def after_answer(self, attempt: int, status: int, retry_after: float | None) -> float | None:
        """The wait before the next try, or None when this answer is final."""
        if status in RETRY_STATUSES and attempt < self.max_retries:
            return self.delay(attempt, retry_after)
        return None


def http_options(*, base_url: str, api_key: str, timeout: float, transport: Any) -> dict[str, Any]:
    """The httpx client's options, the same for the sync and the async client."""
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {"Authorization": f"Api-Key {api_key}"},
        "timeout": timeout,
        "transport": transport,
    }


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def answer_parse(status: int, text: str, retry_after: float | None, parse: Callable[[Any], Any]) -> Any:
    """The parsed result of a 2xx answer; :class:`ApiError` for anything else."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = text
    if not 200 <= status < 300:
        raise ApiError.from_response(status, body, retry_after)
    return parse(body)


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _events_prepare(events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each event as the API takes it, with an event id given once, before any try."""
    for event in events:
        out = dict(event)
        out.setdefault("event_id", uuid.uuid4().hex)
        ts = out.get("timestamp")
        if ts is None:
            out["timestamp"] = dt.datetime.now(dt.UTC).isoformat()
        elif isinstance(ts, dt.datetime):
            out["timestamp"] = (ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)).isoformat()
        yield out


def batches(events: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    if not 1 <= size <= 10_000:
        raise ValueError("batch_size must be between 1 and 10,000 (the API's batch limit)")
    batch: list[dict[str, Any]] = []
    for event in _events_prepare(events):
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _query(**values: Any) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = _bool(value)
        elif isinstance(value, dict):
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


class Endpoints:
    """Every endpoint once; ``_send`` is the client's transport (sync or async)."""

    def _send(self, call: Call) -> Any:  # pragma: no cover - each client has its own
        raise NotImplementedError

    def _events_batch(self, batch: list[dict[str, Any]]) -> Any:
        return self._send(Call("POST", "/api/v1/events", IngestResult.from_json, body={"events": batch}))

    def upsert_items(self, items: Iterable[Mapping[str, Any]]) -> Any:
        """Create or replace items (``{"item_id", "attributes", "active"}``), all or nothing."""
        return self._send(Call("POST", "/api/v1/items", UpsertResult.from_json, body={"items": list(items)}))

    def upsert_users(self, users: Iterable[Mapping[str, Any]]) -> Any:
        """Create or replace users (``{"user_id", "attributes"}``), all or nothing."""
        return self._send(Call("POST", "/api/v1/users", UpsertResult.from_json, body={"users": list(users)}))

    def recommendations(
        self,
        user_id: str,
        *,
        k: int = 10,
        filter: str | None = None,  # noqa: A002 - the API's own name
        filter_params: dict[str, Any] | None = None,
        explain: bool = False,
        context: dict[str, Any] | None = None,
    ) -> Any:
        """The user's top ``k`` items → :class:`RecommendationList`."""
        params = _query(k=k, filter=filter, filter_params=filter_params, explain=explain, context=context)
        path = f"/api/v1/users/{_seg(user_id)}/recommendations"
        return self._send(Call("GET", path, RecommendationList.from_json, params))

    def similar(
        self,
        item_id: str,
        *,
        k: int = 10,
        filter: str | None = None,  # noqa: A002
        filter_params: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> Any:
        """Items like ``item_id`` → :class:`RecommendationList`."""
        params = _query(k=k, filter=filter, filter_params=filter_params, user=user_id)
        path = f"/api/v1/items/{_seg(item_id)}/similar"
        return self._send(Call("GET", path, RecommendationList.from_json, params))

    def popular(self, *, k: int = 10, window: str = "7d", filter: str | None = None) -> Any:  # noqa: A002
        """The most popular items in ``window`` → list of :class:`PopularItem`."""
        params = _query(k=k, window=window, filter=filter)
        return self._send(Call("GET", "/api/v1/popular", PopularItem.list_from_json, params))

    def profile(self, user_id: str, *, embedding: bool = False) -> Any:
        """The user's persona (interests, activity, segment, features…) as a dict."""
        path = f"/api/v1/users/{_seg(user_id)}/profile"
        return self._send(Call("GET", path, dict, _query(embedding=embedding)))

    def risk(self, user_id: str) -> Any:
        """The user's risk score with reasons → :class:`RiskScore` (domains with a risk model)."""
        return self._send(Call("GET", f"/api/v1/users/{_seg(user_id)}/risk", RiskScore.from_json))

    def feedback(self, recommendation_id: str, item_id: str, action: str = "click") -> Any:
        """Report a click, conversion or dismissal on a served list → :class:`FeedbackResult`."""
        body = {"recommendation_id": recommendation_id, "item_id": item_id, "action": action}
        return self._send(Call("POST", "/api/v1/feedback", FeedbackResult.from_json, body=body))

    def erase_user(self, user_id: str) -> Any:
        """Erase the user and everything derived from them (admin scope) → :class:`EraseResult`."""
        return self._send(Call("DELETE", f"/api/v1/users/{_seg(user_id)}", EraseResult.from_json))

    def train(self, config: dict[str, Any] | None = None) -> Any:
        """Start training the tenant's model (admin scope) → the :class:`Job`."""
        body = {"config": config} if config else {}
        return self._send(Call("POST", "/api/v1/models/train", Job.from_json, body=body))

    def job(self, job_id: int) -> Any:
        """A training or profiles job → :class:`Job`."""
        return self._send(Call("GET", f"/api/v1/jobs/{int(job_id)}", Job.from_json))
