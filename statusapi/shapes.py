"""What the API shows of a row: the Source and Event shapes of interface.md §7."""

from __future__ import annotations

from typing import Any

from flask import current_app

from healthd.plugins import redact
from statusapi.render import iso


def source(row: dict[str, Any]) -> dict[str, Any]:
    pending = None
    if row["pending_status"]:
        cfg = current_app.config
        failing = row["pending_status"] != "connected"
        needed = (row["fall"] or cfg["DEFAULT_FALL"]) if failing else (row["rise"] or cfg["DEFAULT_RISE"])
        pending = {"status": row["pending_status"], "count": row["pending_count"], "needed": needed}
    return {
        "id": row["id"], "name": row["name"], "type": row["type"], "plugin": row["plugin"],
        "enabled": row["enabled"], "connection_status": row["connection_status"],
        "test_status": row["test_status"], "last_tested_at": iso(row["last_tested_at"]),
        "test_error_message": row["test_error_message"],
        "status_changed_at": iso(row["status_changed_at"]),
        "latency_ms": row["latency_ms"], "flapping": row["flapping"], "pending": pending,
        "interval_s": row["interval_s"], "timeout_s": row["timeout_s"],
        "config": redact(row["plugin"], row["config"]),
        "updated_at": iso(row["updated_at"]),
    }


def event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "source_id": row["source_id"], "event": row["event"],
        "from": row["from_status"], "to": row["to_status"], "at": iso(row["at"]),
        "error_message": row["error_message"], "results": row["results"],
    }
