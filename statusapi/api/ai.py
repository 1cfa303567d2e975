"""The two routes of the original design, key for key and value for value, for the clients
written against it (docs/api.md).

``status`` is what the original wrote: the same value as ``endpoint`` ("configured" when
the AI source exists with an endpoint, else "not_configured"); the debounced health is
``connectionStatus``. Timestamps are written as the original's JavaScript
``Date.toISOString()`` wrote them: milliseconds and ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app

from healthd.core.words import SUCCESS, UNKNOWN
from statusapi.data import queries
from statusapi.web.render import json_response

bp = Blueprint("ai", __name__)


def _source() -> dict[str, Any] | None:
    return queries.get_ai_source(current_app.config["AI_SOURCE_ID"])


def _endpoint(row: dict[str, Any] | None) -> str:
    configured = row is not None and bool((row["config"] or {}).get("endpoint"))
    return "configured" if configured else "not_configured"


def iso_millis(at: datetime | None) -> str | None:
    """``2025-10-20T10:30:45.123Z``: UTC, milliseconds truncated as a JavaScript Date
    holds them."""
    if at is None:
        return None
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@bp.get("/api/ai/connections")
def connections() -> Response:
    row = _source()
    return json_response(
        {
            "endpoint": _endpoint(row),
            "apiKey": "",
            "enabled": bool(row and row["enabled"]),
            "lastTested": iso_millis(row["last_tested_at"]) if row else None,
            "testStatus": row["test_status"] if row else None,
        }
    )


@bp.get("/api/ai/connection-status")
def connection_status() -> Response:
    row = _source()
    endpoint = _endpoint(row)
    return json_response(
        {
            "status": endpoint,
            "lastTested": iso_millis(row["last_tested_at"]) if row else None,
            "testStatus": row["test_status"] if row else None,
            "endpoint": endpoint,
            "connectionStatus": row["connection_status"] if row else UNKNOWN,
            # a success's message is kept in the row (the raw result), but it is no error
            "errorMessage": None
            if not row or row["test_status"] == SUCCESS
            else row["test_error_message"],
        }
    )
