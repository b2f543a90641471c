"""What the operators' monitoring page shows: queue depths and the workers that answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from platform_core.celery import QUEUES
from platform_core.jobs.models import TrainingJob


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


#: What the first argument of a task names, so the page can tell whose task it
#: is. A task not listed here belongs to no tenant the page can prove: only
#: superusers see its arguments.
TASK_FIRST_ARG: dict[str, str] = {
    "jobs.train_model": "job",
    "jobs.build_profiles": "job",
    "jobs.build_profiles_part": "job",
    "profiles.refresh_users": "tenant",
}


def _first_arg(task: dict[str, Any]) -> tuple[str, int] | None:
    kind, args = TASK_FIRST_ARG.get(task.get("name") or ""), task.get("args")
    if kind is None or not isinstance(args, list | tuple) or not args or not isinstance(args[0], int):
        return None
    return kind, args[0]


def _task_tenant(task: dict[str, Any], job_tenant: dict[int, int]) -> int | None:
    first = _first_arg(task)
    if first is None:
        return None
    kind, value = first
    return job_tenant.get(value) if kind == "job" else value


def celery_status_scope(*, status: CeleryStatus, tenant_ids: frozenset[int] | None) -> CeleryStatus:
    """``status`` showing only the running tasks of ``tenant_ids`` (None: all tenants).

    The other tasks are counted per worker (``hidden``), never shown: their
    arguments are another tenant's ids.
    """
    if tenant_ids is None:
        return status
    firsts = [_first_arg(t) for w in status.workers.values() for t in w["active"]]
    job_ids = {value for kind, value in filter(None, firsts) if kind == "job"}
    # unscoped: the tasks may be any tenant's; the filter below keeps the user's.
    job_tenant = dict(TrainingJob.unscoped.filter(pk__in=job_ids).values_list("pk", "tenant_id"))
    for worker in status.workers.values():
        mine = [task for task in worker["active"] if _task_tenant(task, job_tenant) in tenant_ids]
        worker["hidden"] = len(worker["active"]) - len(mine)
        worker["active"] = mine
    return status
