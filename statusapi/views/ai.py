"""The two routes of the original design, field for field, for the clients that use them.

``status`` is "enabled" when the AI source is enabled and (debounced) connected, else
"disabled" - the value the old chat bot flip-flopped on, now debounced.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from healthd.words import CONNECTED, UNKNOWN
from statusapi import queries
from statusapi.render import json_response

bp = Blueprint("ai", __name__)


def _source() -> dict[str, Any] | None:
    return queries.get_ai_source(current_app.config["AI_SOURCE_ID"])


def _endpoint(row: dict[str, Any] | None) -> str:
    configured = row is not None and bool((row["config"] or {}).get("endpoint"))
    return "configured" if configured else "not_configured"


@bp.get("/api/ai/connections")
def connections() -> Response:
    row = _source()
    return json_response(
        {
            "endpoint": _endpoint(row),
            "apiKey": "",
            "enabled": bool(row and row["enabled"]),
            "lastTested": row["last_tested_at"] if row else None,
            "testStatus": row["test_status"] if row else None,
        }
    )


@bp.get("/api/ai/connection-status")
def connection_status() -> Response:
    row = _source()
    up = bool(row and row["enabled"] and row["connection_status"] == CONNECTED)
    return json_response(
        {
            "status": "enabled" if up else "disabled",
            "lastTested": row["last_tested_at"] if row else None,
            "testStatus": row["test_status"] if row else None,
            "endpoint": _endpoint(row),
            "connectionStatus": row["connection_status"] if row else UNKNOWN,
            "errorMessage": row["test_error_message"] if row else None,
        }
    )
