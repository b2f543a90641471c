"""What the operators' monitoring page shows: queue depths and the workers that answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from platform_core.celery import QUEUES


@dataclass
class CeleryStatus:
    broker: str
    queues: dict[str, int | None] = field(default_factory=dict)
    queue_error: str = ""
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    worker_error: str = ""

    @property
    def any_worker(self) -> bool:
        return bool(self.workers)


def _broker_label(url: str) -> str:
    """The broker URL without credentials."""
    scheme, _, rest = url.partition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}://{host}"


def celery_status_get(*, timeout: float = 1.0) -> CeleryStatus:
    """Queue depths (passive declare: works on Redis, RabbitMQ and the filesystem broker) and workers.

    Workers are found with Celery's inspect API (a broadcast with ``timeout``);
    an empty ``workers`` means no worker answered in time.
    """
    from platform_core.celery import app

    status = CeleryStatus(broker=_broker_label(app.conf.broker_url or ""))
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            for name in QUEUES:
                try:
                    status.queues[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception:  # a queue nobody declared yet is empty
                    status.queues[name] = 0
                    channel = conn.channel()
    except Exception as exc:  # shown to the operator as is
        status.queue_error = f"{type(exc).__name__}: {exc}"
    try:
        inspect = app.control.inspect(timeout=timeout)
        pings = inspect.ping() or {}
        active = inspect.active() or {} if pings else {}
        stats = inspect.stats() or {} if pings else {}
        queues = inspect.active_queues() or {} if pings else {}
        for name in sorted(pings):
            status.workers[name] = {
                "active": [
                    {"name": t.get("name"), "id": t.get("id"), "args": t.get("args")}
                    for t in active.get(name, [])
                ],
                "queues": [q.get("name") for q in queues.get(name, [])],
                "pool": (stats.get(name, {}).get("pool") or {}).get("max-concurrency"),
                "pid": stats.get(name, {}).get("pid"),
            }
    except Exception as exc:
        status.worker_error = f"{type(exc).__name__}: {exc}"
    return status
