"""JSON rendering: compact, UTC ISO 8601 timestamps with a Z."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset():  # the pool's sessions are in UTC already; anything else is converted
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, separators=(",", ":"))


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status=status, mimetype="application/json")
