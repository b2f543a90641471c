"""Request parsing of the ingestion endpoint: orjson instead of the standard library.

A 1,000-event batch is ~150 kB of JSON; ``json.load`` on DRF's decoded stream
spends ~1.5 ms on it, orjson ~0.3 ms on the raw bytes. Same contract as DRF's
``JSONParser``: malformed JSON (NaN and Infinity included) is a 400
``parse_error``. One difference: integers beyond the 64-bit range are read
as floats (the standard library keeps them exact).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class FastJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if encoding.lower().replace("-", "") != "utf8":  # orjson reads UTF-8 only
            return super().parse(stream, media_type, parser_context)
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
