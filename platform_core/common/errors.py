"""One error shape for every API: ``{"error": {"code", "message", "fields"}}``.

Services raise :class:`ServiceError` (or a subclass) with a code from an
app's error ``Enum``; the DRF exception handler renders it, and renders
DRF's own exceptions in the same shape.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

log = logging.getLogger(__name__)


class ErrorCode(enum.StrEnum):
    """Codes shared by every app; apps add their own Enums."""

    VALIDATION = "validation_error"
    NOT_FOUND = "not_found"
    PARSE = "parse_error"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION = "permission_denied"
    THROTTLED = "throttled"
    METHOD = "method_not_allowed"
    UNSUPPORTED_MEDIA = "unsupported_media_type"
    CONFLICT = "conflict"
    TOO_LARGE = "request_too_large"
    SERVER = "server_error"
    DATABASE_UNAVAILABLE = "database_unavailable"


class ServiceError(Exception):
    """A refusal by a service, rendered as a 4xx in the one error shape."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: enum.Enum | str = ErrorCode.VALIDATION,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code.value if isinstance(code, enum.Enum) else code
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code


class ValidationFailed(ServiceError):
    """Input broke one or more rules; ``fields`` maps field paths to rules broken."""


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, message: str = "Not found.", **kwargs: Any) -> None:
        kwargs.setdefault("code", ErrorCode.NOT_FOUND)
        super().__init__(message, **kwargs)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → ``{"a.b[2].c": ["rule", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                path = prefix or "non_field_errors"
            for k, v in _flatten(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(x, (dict, list)) for x in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(x) for x in detail)
        else:
            for i, value in enumerate(detail):
                if value:
                    for k, v in _flatten(value, f"{prefix}[{i}]").items():
                        out.setdefault(k, []).extend(v)
    elif detail is not None:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


_DRF_CODES = {
    exceptions.ParseError: ErrorCode.PARSE,
    exceptions.AuthenticationFailed: ErrorCode.UNAUTHENTICATED,
    exceptions.NotAuthenticated: ErrorCode.UNAUTHENTICATED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA,
    exceptions.Throttled: ErrorCode.THROTTLED,
    exceptions.ValidationError: ErrorCode.VALIDATION,
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the one error shape."""
    if isinstance(exc, ServiceError):
        retry_after = getattr(exc, "retry_after", None)  # a 503 says when to come back
        return Response(
            error_body(exc.code, exc.message, exc.fields),
            status=exc.status_code,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )
    if isinstance(exc, RequestDataTooBig):  # raised by request.body when DRF parses it
        rule = f"must be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
        body = error_body(ErrorCode.TOO_LARGE.value, f"Request body too large: {rule}", {"body": [rule]})
        return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DatabaseOperationalError):
        # The database is unreachable (restart, failover): a retryable 503, not a 500. The
        # kept connection is health-checked at the next request (CONN_HEALTH_CHECKS). Logged as
        # an error: on SQLite a schema mistake is an OperationalError too.
        log.error("database unavailable: %s", exc, exc_info=exc)
        return Response(
            error_body(
                ErrorCode.DATABASE_UNAVAILABLE.value, "The database is unavailable; try again shortly."
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real server error: let Django log it and answer 500
    code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), ErrorCode.SERVER)
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "Invalid input: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in list(fields.items())[:5])
    else:
        fields = {}
        message = str(exc.detail)
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    return Response(error_body(code.value, message, fields), status=exc.status_code, headers=headers)
