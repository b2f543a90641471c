"""Publishing a task from a request: fail fast and say so when the broker is down.

Celery's ``apply_async`` retries a publish (``task_publish_retry``) and kombu
retries the connection until ``broker_connection_timeout``: against a closed
port that held a request for 6 s before raising. Here a publish connects once
(the transport's ``max_retries: 0`` in settings) and does not retry, and a
broker error becomes :class:`BrokerUnavailable` (503, ``broker_unavailable``,
``Retry-After``) that the caller either reports or records for a later resend.
"""

from __future__ import annotations

import enum
from typing import Any

from django.conf import settings
from kombu.exceptions import OperationalError

from platform_core.common.errors import ServiceError

#: What a publish raises when the broker cannot be reached (socket errors are OSErrors).
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)


class BrokerError(enum.StrEnum):
    UNAVAILABLE = "broker_unavailable"


class BrokerUnavailable(ServiceError):
    """The task queue cannot be reached; the client should retry later."""

    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, code=BrokerError.UNAVAILABLE)
        self.retry_after = int(getattr(settings, "BROKER_RETRY_AFTER_SECONDS", 30))


def task_publish(*, task: Any, args: list[Any], **options: Any) -> None:
    """Send ``task`` once, without retries.

    Raises:
        BrokerUnavailable: the broker refused or dropped the connection.
    """
    try:
        task.apply_async(args=args, retry=False, **options)
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(
            f"The task queue is unavailable ({type(exc).__name__}: {exc}); try again later."
        ) from exc
