"""OpenAPI (drf-spectacular): the ``Api-Key`` scheme and the one error shape on every operation.

Views describe their parameters, bodies and success answers next to the
code (``extend_schema``); what every /api/v1 operation shares is added here,
once, by a post-processing hook: 400, 401, 403, 404 and 429 in the one error
shape (``Retry-After`` on 429), and every other 4xx/5xx a view lists (e.g.
409) gets that body too. The fuzzer in CI (tests/platform_core/api/test_fuzz.py)
holds every answer to this document.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

API_PREFIX = "/api/v1/"
ERROR_COMPONENT = "Error"
#: Status → what it means on every operation (views add more, e.g. 409).
COMMON_ERRORS = {
    "400": "Invalid input: `fields` names each bad parameter or body field and the rule it broke.",
    "401": "No `Authorization: Api-Key …` header, or an unknown or revoked key.",
    "403": "The key lacks the scope this method needs.",
    "404": "No such object in the key's tenant (another tenant's id answers exactly the same).",
    "429": "Too many requests for this key; retry after `Retry-After` seconds.",
}
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Every error: `{"error": {"code", "message", "fields"}}`.',
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "description": "A stable error code, e.g. `validation_error`."},
                "message": {"type": "string", "description": "Names the field and the rule broken."},
                "fields": {
                    "type": "object",
                    "description": "Field path → rules broken (empty when no field is at fault).",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "platform_core.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>` (create one with `manage.py create_api_key`).",
        }


def _error_response(description: str, status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }
    if status == "429":
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return response


def error_responses_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS: the error shape on every /api/v1 operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45":
                    responses[status] = _error_response(response.get("description") or "", status)
    return result
