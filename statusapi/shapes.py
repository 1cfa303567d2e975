"""What the API shows of a row: the Source and Event shapes of interface.md §7."""

from __future__ import annotations

import json
from typing import Any

from healthd.plugins import redact

_REDACTED: dict[tuple[str, str], Any] = {}
_REDACTED_MAX = 20_000
_KEYS = ("id", "name", "type", "plugin", "enabled", "connection_status", "test_status")


def redacted_config(plugin: str, config_text: str) -> Any:
    """The config fit to show; cached per distinct (plugin, config) text, so a changed
    config is redacted afresh and an unchanged one costs a dict lookup."""
    key = (plugin, config_text)
    out = _REDACTED.get(key)
    if out is None:
        if len(_REDACTED) >= _REDACTED_MAX:
            _REDACTED.clear()
        out = _REDACTED[key] = redact(plugin, json.loads(config_text))
    return out


def source(r: tuple[Any, ...]) -> dict[str, Any]:
    """A Source from a row of queries.SOURCE_SELECT."""
    d = dict(zip(_KEYS, r, strict=False))
    d["last_tested_at"] = r[7]  # datetimes: rendered as ISO 8601 UTC by render.dumps
    d["test_error_message"] = r[8]
    d["status_changed_at"] = r[9]
    d["latency_ms"] = r[10]
    d["flapping"] = r[11]
    d["pending"] = {"status": r[12], "count": r[13], "needed": r[14]} if r[12] else None
    d["interval_s"] = r[15]
    d["timeout_s"] = r[16]
    d["updated_at"] = r[17]
    d["config"] = redacted_config(r[3], r[18])
    d["depends_on"] = r[19]
    d["unreachable_via"] = r[20]
    d["in_maintenance"] = r[21]
    return d


def event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "event": row["event"],
        "from": row["from_status"],
        "to": row["to_status"],
        "at": row["at"],
        "error_message": row["error_message"],
        "results": row["results"],
        "maintenance": row["maintenance"],
        "suppressed_by": row["suppressed_by"],
    }
