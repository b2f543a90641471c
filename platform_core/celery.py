"""The Celery app: configured from Django settings (namespace CELERY).

Queues: ``default`` (housekeeping, fan-out), ``ml`` (TensorFlow training,
route it to big or GPU workers), ``profiles`` (profile building). Every task
has a time limit: the settings' global one, and tighter ones per task here.
The same configuration runs on the embedded filesystem broker, Redis or
RabbitMQ: nothing below depends on the transport.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

QUEUES: tuple[str, ...] = ("default", "ml", "profiles")

app = Celery("platform_core")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Each queue has its own direct exchange and routing key, so a message reaches exactly one queue.
app.conf.task_queues = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES)
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "jobs.train_model": {"queue": "ml"},
    "jobs.build_profiles": {"queue": "profiles"},
    "profiles.refresh_users": {"queue": "profiles"},
    "profiles.outbox_drain": {"queue": "default"},
    "jobs.*": {"queue": "default"},
    "analytics.*": {"queue": "default"},  # NumPy k-means and SQL: no TensorFlow, no GPU
}
# Housekeeping entries; DatabaseScheduler copies them into django-celery-beat's
# tables, where the console shows them. Per-tenant intervals live in
# jobs.TenantSchedule (edited in the console) and are read by the fan-out.
# ``expires``: a run that waited past the next one (workers busy) is dropped, not piled up.
app.conf.beat_schedule = {
    "jobs-schedules-fan-out": {
        "task": "jobs.schedules_fan_out",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 290},
    },
    "jobs-sweep-stale": {"task": "jobs.sweep_stale", "schedule": 60.0, "options": {"expires": 55}},
    "profiles-outbox-drain": {"task": "profiles.outbox_drain", "schedule": 60.0, "options": {"expires": 55}},
    # Retrains after erasures (ERASURE_RETRAIN_WINDOW_HOURS); the sweep itself decides who is due.
    "jobs-erasure-retrains": {
        "task": "jobs.erasure_retrains",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 290},
    },
    # Recomputes segments older than ANALYTICS_SEGMENT_MAX_AGE_SECONDS (docs/analytics.md).
    "analytics-segments-refresh": {
        "task": "analytics.segments_refresh",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 890},
    },
}

app.autodiscover_tasks()
