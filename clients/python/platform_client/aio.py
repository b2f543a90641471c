"""The asynchronous twin of :class:`platform_client.Client` (the same methods, awaited)."""

from __future__ import annotations

import asyncio
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


class AsyncClient(Endpoints):
    """``async with AsyncClient(base_url, api_key) as client: await client.recommendations("alice")``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._http = httpx.AsyncClient(
            **http_options(base_url=base_url, api_key=api_key, timeout=timeout, transport=transport)
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                r = await self._http.request(call.method, call.path, params=call.params, json=call.body)
            except httpx.TransportError as exc:
                delay = self.retry.after_error(attempt, exc)
            else:
                wait = retry_after_seconds(r.headers.get("Retry-After"))
                delay = self.retry.after_answer(attempt, r.status_code, wait)
                if delay is None:
                    return answer_parse(r.status_code, r.text, wait, call.parse)
            await asyncio.sleep(delay)
            attempt += 1

    async def send_events(
        self, events: Iterable[Mapping[str, Any]], *, batch_size: int = 1000
    ) -> IngestResult:
        """As :meth:`Client.send_events`."""
        total = IngestResult()
        for batch in batches(events, batch_size):
            total = total + await self._events_batch(batch)
        return total

    async def wait_job(self, job_id: int, *, timeout: float = 600, poll: float = 2.0) -> Any:
        """As :meth:`Client.wait_job`."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            if job.done or time.monotonic() > deadline:
                return job
            await asyncio.sleep(poll)
