"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from platform_client._base import (
    Call,
    Endpoints,
    RetryPolicy,
    answer_parse,
    batches,
    http_options,
    retry_after_seconds,
)
from platform_client.models import IngestResult


class Client(Endpoints):
    """``Client(base_url, api_key)``; use as a context manager, or call :meth:`close`.

    Connection errors, 429 and 503 are retried (``max_retries``, exponential backoff, or the
    answer's ``Retry-After``); every other error raises :class:`ApiError` at once.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._http = httpx.Client(
            **http_options(base_url=base_url, api_key=api_key, timeout=timeout, transport=transport)
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                r = self._http.request(call.method, call.path, params=call.params, json=call.body)
            except httpx.TransportError as exc:
                delay = self.retry.after_error(attempt, exc)
            else:
                wait = retry_after_seconds(r.headers.get("Retry-After"))
                delay = self.retry.after_answer(attempt, r.status_code, wait)
                if delay is None:
                    return answer_parse(r.status_code, r.text, wait, call.parse)
            time.sleep(delay)
            attempt += 1

    def send_events(self, events: Iterable[Mapping[str, Any]], *, batch_size: int = 1000) -> IngestResult:
        """Send events in batches; each event without an ``event_id`` gets one before the first try,
        so a retried batch is stored once. A missing ``timestamp`` is now (UTC); a ``datetime``
        becomes ISO 8601. Returns the counts summed over the batches."""
        total = IngestResult()
        for batch in batches(events, batch_size):
            total = total + self._events_batch(batch)
        return total

    def wait_job(self, job_id: int, *, timeout: float = 600, poll: float = 2.0) -> Any:
        """Poll a job until it ends (or ``timeout`` seconds pass) and return it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.done or time.monotonic() > deadline:
                return job
            time.sleep(poll)
