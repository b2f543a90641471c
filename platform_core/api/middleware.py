"""Refuse control characters in the path and query string of API requests, before any view.

An id or a filter in the URL reaches database queries as text: a NUL there
is a 500 on PostgreSQL (it refuses NUL in text) and a silent miss on SQLite.
No id the API accepts contains a control character (``common.limits``), so
refusing them up front gives one answer on both databases, on the lean GET
path too, and keeps every view from checking its own parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from platform_core.common.errors import ErrorCode, error_body
from platform_core.common.limits import RULE_CONTROL, text_has_control

#: A percent-encoded C0 or C1 control character (the C1 ones as UTF-8: %C2%80 to %C2%9F).
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF]|[cC]2%[89][0-9a-fA-F])")


def _control_field(request: HttpRequest) -> str | None:
    """``path`` or the query parameter holding a control character, or None (the common case)."""
    if text_has_control(request.path_info):
        return "path"
    query = request.META.get("QUERY_STRING", "")
    if not _ENCODED_CONTROL.search(query) and not text_has_control(query):
        return None
    for name, values in request.GET.lists():
        if text_has_control(name) or any(text_has_control(v) for v in values):
            return name
    return None


class ControlCharactersMiddleware:
    """A 400 in the one error shape for ``/api/`` requests with control characters in the URL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            field = _control_field(request)
            if field is not None:
                message = f"Invalid input: {field}: {RULE_CONTROL}"
                body = error_body(ErrorCode.VALIDATION.value, message, {field: [RULE_CONTROL]})
                return JsonResponse(body, status=400)
        return self.get_response(request)
