"""JSON rendering: compact, UTC ISO 8601 timestamps with a Z (orjson, natively)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    return str(value)


def dumps(obj: Any) -> str:
    """Compact JSON; datetimes as ISO 8601 UTC with a Z (orjson renders them natively)."""
    return orjson.dumps(obj, default=_default, option=_OPTIONS).decode()


def json_response(obj: Any, status: int = 200) -> Response:
    body = orjson.dumps(obj, default=_default, option=_OPTIONS)
    return Response(body, status=status, mimetype="application/json")
