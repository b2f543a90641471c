"""The platform's one error shape, ``{"error": {"code", "message", "fields"}}``, as an exception."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A non-2xx answer (or a connection that kept failing after the retries).

    Attributes:
        status: the HTTP status (0 when no answer came back).
        code: the platform's error code (``invalid_events``, ``not_found``, ``throttled``…).
        message: the human-readable message.
        fields: field path → rules broken (``{"events[1].timestamp": ["must include a time zone"]}``).
        retry_after: seconds from ``Retry-After``, where the answer had one.
    """

    def __init__(
        self,
        *,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, status: int, body: Any, retry_after: float | None) -> ApiError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(status=status, code="http_error", message=str(body)[:500], retry_after=retry_after)
        return cls(
            status=status,
            code=str(error.get("code", "http_error")),
            message=str(error.get("message", "")),
            fields=error.get("fields") or {},
            retry_after=retry_after,
        )
