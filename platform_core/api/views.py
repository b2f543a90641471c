from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: touches no database (also the serving benchmarks' baseline)."""
    return JsonResponse({"status": "ok"})
