"""The OpenAPI 3 document of every route (checked route by route by the tests)."""

from __future__ import annotations

from typing import Any

from healthd import __version__
from statusapi.openapi.pages import page_paths
from statusapi.openapi.parts import (
    AFTER,
    BIGINT_MAX,
    INT_MAX,
    LIMIT,
    NO_NUL,
    NOT_FOUND,
    NSTR,
    SCHEMAS,
    SOURCE_ID,
    STATUS,
    STATUS_LIST,
    TS_MS,
    get_op,
    ok_json,
    query,
    ref,
)


def document() -> dict[str, Any]:
    events_list: dict[str, Any] = {
        "type": "object",
        "required": ["events", "count"],
        "properties": {
            "events": {"type": "array", "items": ref("Event")},
            "count": {"type": "integer"},
        },
    }
    paths: dict[str, Any] = {
        "/api/v1/sources": get_op(
            "List sources",
            ok_json(
                {
                    "type": "object",
                    "required": ["sources", "count"],
                    "properties": {
                        "sources": {"type": "array", "items": ref("Source")},
                        "count": {"type": "integer"},
                        "next_cursor": NSTR,
                    },
                }
            ),
            [
                query(
                    "status", {"type": "string", "pattern": STATUS_LIST}, "comma-separated statuses"
                ),
                query("plugin", {"type": "string", "pattern": NO_NUL}, "plugin name"),
                query("enabled", {"type": "string", "enum": ["true", "false"]}, "enabled or not"),
                LIMIT,
                query(
                    "cursor",
                    {"type": "string", "minLength": 1, "maxLength": 50, "pattern": NO_NUL},
                    "next_cursor of the previous page (its last id)",
                ),
            ],
        ),
        "/api/v1/sources/{source_id}": get_op(
            "One source", ok_json(ref("Source")), [SOURCE_ID], NOT_FOUND
        ),
        "/api/v1/sources/{source_id}/events": get_op(
            "A source's events, newest first",
            ok_json(events_list),
            [
                SOURCE_ID,
                LIMIT,
                query(
                    "before",
                    {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                    "only events older than this id",
                ),
            ],
            NOT_FOUND,
        ),
        "/api/v1/events": get_op(
            "Every source's events after an id, oldest first",
            ok_json(
                {
                    **events_list,
                    "properties": {**events_list["properties"], "next_after": {"type": "integer"}},
                }
            ),
            [
                query(
                    "after",
                    {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX, "default": 0},
                    "history id to continue after",
                ),
                LIMIT,
            ],
        ),
        "/api/v1/summary": get_op(
            "Counts per status, flapping, daemon freshness",
            ok_json(
                {
                    "type": "object",
                    "required": ["counts", "total", "flapping", "generated_at", "daemon"],
                    "properties": {
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "total": {"type": "integer"},
                        "enabled": {"type": "integer"},
                        "flapping": {"type": "integer"},
                        "generated_at": {"type": "string"},
                        "daemon": {"type": "object"},
                    },
                }
            ),
        ),
        "/api/v1/stream": get_op(
            "Server-Sent Events: `status` (transition) and `flapping` events; id = history id",
            {
                "description": "an endless event stream (text/event-stream, not JSON): frames"
                " `id: <history id>`, `event: status|flapping`, `data: <Event as JSON>`, and"
                " `: keepalive` comments; 503 with Retry-After past the per-worker stream cap",
                "content": {
                    "text/event-stream": {
                        # OpenAPI 3.2's keyword for one item of a sequential media type;
                        # 3.1 tools ignore it, and no JSON schema is claimed for the body
                        "itemSchema": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "id": {"type": "string"},
                                "event": {"type": "string", "enum": ["status", "flapping"]},
                                "data": {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": ref("Event"),
                                },
                            },
                        }
                    }
                },
            },
            [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
                },
                AFTER,
            ],
        ),
        "/api/ai/connections": get_op(
            "The original AI connection route",
            ok_json(
                {
                    "type": "object",
                    "required": ["endpoint", "apiKey", "enabled", "lastTested", "testStatus"],
                    "additionalProperties": False,
                    "properties": {
                        "endpoint": {"type": "string", "enum": ["configured", "not_configured"]},
                        "apiKey": {"type": "string", "enum": [""]},
                        "enabled": {"type": "boolean"},
                        "lastTested": TS_MS,
                        "testStatus": NSTR,
                    },
                }
            ),
        ),
        "/api/ai/connection-status": get_op(
            "The original AI status route",
            ok_json(
                {
                    "type": "object",
                    "required": [
                        "status",
                        "lastTested",
                        "testStatus",
                        "endpoint",
                        "connectionStatus",
                        "errorMessage",
                    ],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"type": "string", "enum": ["configured", "not_configured"]},
                        "lastTested": TS_MS,
                        "testStatus": NSTR,
                        "endpoint": {"type": "string", "enum": ["configured", "not_configured"]},
                        "connectionStatus": STATUS,
                        "errorMessage": NSTR,
                    },
                }
            ),
        ),
        "/api/v1/maintenance": get_op(
            "Maintenance windows open now or to come",
            ok_json(
                {
                    "type": "object",
                    "required": ["windows", "count"],
                    "properties": {
                        "windows": {"type": "array", "items": ref("MaintenanceWindow")},
                        "count": {"type": "integer"},
                    },
                }
            ),
        ),
        "/api/v1/webhooks/deliveries": get_op(
            "The webhook delivery log, newest first",
            ok_json(
                {
                    "type": "object",
                    "required": ["deliveries", "count"],
                    "properties": {
                        "deliveries": {"type": "array", "items": ref("Delivery")},
                        "count": {"type": "integer"},
                        "next_before": {"type": ["integer", "null"]},
                    },
                }
            ),
            [
                query(
                    "webhook",
                    {"type": "integer", "minimum": 1, "maximum": INT_MAX},
                    "only this webhook's (ids are 32-bit)",
                ),
                query("failed", {"type": "string", "enum": ["true", "false"]}, "only failed ones"),
                LIMIT,
                query(
                    "before",
                    {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                    "only deliveries older than this id",
                ),
            ],
        ),
        "/healthz": {
            "get": {
                "summary": "Liveness: 200 while the process serves",
                "security": [],
                "responses": {"200": ok_json({"type": "object"})},
            }
        },
        "/readyz": get_op(
            "Readiness: the database answers, its schema is the one this healthd knows"
            " (else 503 schema_unknown naming `healthd migrate`), and a daemon heartbeat"
            " is fresh",
            ok_json({"type": "object"}),
        ),
        "/metrics": get_op(
            "Prometheus metrics",
            {
                "description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        ),
        "/openapi.json": get_op("This document", ok_json({"type": "object"})),
        **page_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "healthd status API",
            "version": __version__,
            "description": "Read-only status of healthd's data sources. JSON only; errors are "
            '{"error": {"code", "message"}}; responses carry an ETag.',
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "BadRequest": ok_json(ref("Error"), "bad parameter"),
                "Unauthorized": ok_json(ref("Error"), "missing or wrong bearer token"),
                "NotFound": ok_json(ref("Error"), "no such source"),
                "Unavailable": {
                    **ok_json(ref("Error"), "database unreachable"),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                },
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
