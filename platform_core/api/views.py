"""Views of the API outside DRF: liveness, and the JSON answers for what no API view serves.

Everything under ``/api/`` answers in the one error shape, 404s and 500s included:
an unknown path or a trailing slash reaches :func:`api_not_found` (the last route),
and the project's ``handler404``/``handler500`` answer JSON for ``/api/`` paths
(Django's HTML pages elsewhere, e.g. the console).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from platform_core.common.errors import ErrorCode, error_body

API_PREFIX = "/api/"


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: touches no database (also the serving benchmarks' baseline)."""
    return JsonResponse({"status": "ok"})


def _routes_to_an_api_view(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False


def _not_found(request: HttpRequest) -> JsonResponse:
    path = request.path
    message = f"No API endpoint at {path[:200]}."
    if path.endswith("/") and path != API_PREFIX and _routes_to_an_api_view(path.rstrip("/")):
        # Our routes have no trailing slash (except /api/schema/ and /api/docs/).
        message += f" Did you mean {path.rstrip('/')} (without the trailing slash)?"
    return JsonResponse(error_body(ErrorCode.NOT_FOUND.value, message), status=404)


@csrf_exempt  # any method must reach the JSON 404, not the CSRF middleware's HTML 403
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """The last route under /api/: a path no API view serves, with any method."""
    return _not_found(request)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON for /api/ paths (an Http404 raised outside DRF), Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    """JSON for /api/ paths (the error itself is logged by Django), Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        body = error_body(ErrorCode.SERVER.value, "Internal server error; it has been logged.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
