"""The OpenAPI 3 document of every route (checked route by route by the tests)."""

from __future__ import annotations

from typing import Any

from healthd import __version__, fields
from healthd.fields import STATUS_SCHEMA
from healthd.words import EVENT_KINDS, STATUSES

BIGINT_MAX = 2**63 - 1
_ONE = f"({'|'.join(STATUSES)})"
STATUS_LIST = f"^{_ONE}(,{_ONE})*$"
STATUS = STATUS_SCHEMA
TS = {"type": ["string", "null"], "format": "date-time"}
NSTR = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _get(
    summary: str,
    ok: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses = {"200": ok, **ERRORS, **(extra or {})}
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses}}


SOURCE_ID = {
    "name": "source_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 50},
}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size")

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Source": {
        "type": "object",
        # the columns from healthd/fields.py; "pending" is computed (statusapi/shapes.py)
        "required": [*fields.api_required(), "pending"],
        "properties": {
            **fields.api_properties(),
            "pending": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["status", "count", "needed"],
                        "properties": {
                            "status": STATUS,
                            "count": {"type": "integer"},
                            "needed": {"type": "integer"},
                        },
                    },
                ]
            },
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "source_id", "event", "from", "to", "at"],
        "properties": {
            "id": {"type": "integer"},
            "source_id": {"type": "string"},
            "event": {
                "type": "string",
                "enum": list(EVENT_KINDS),
            },
            "from": STATUS,
            "to": STATUS,
            "at": {"type": "string", "format": "date-time"},
            "error_message": NSTR,
            "results": {"type": "array", "items": {"type": "object"}},
            "maintenance": {
                "type": "boolean",
                "description": "inside a maintenance window: recorded, no webhook sent",
            },
            "suppressed_by": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "parents that were down: recorded, no webhook sent",
            },
        },
    },
    "MaintenanceWindow": {
        "type": "object",
        "required": ["id", "source_ids", "all_sources", "starts_at", "active", "current_or_next"],
        "properties": {
            "id": {"type": "integer"},
            "source_ids": {"type": ["array", "null"], "items": {"type": "string"}},
            "all_sources": {"type": "boolean"},
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": TS,
            "every": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "day": {"type": ["string", "null"], "description": "null: daily"},
                            "time": {"type": "string", "description": "HH:MM in tz"},
                            "tz": {"type": "string"},
                            "duration_s": {"type": "number"},
                        },
                    },
                ]
            },
            "active": {"type": "boolean"},
            "current_or_next": {
                "type": "object",
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                },
            },
            "reason": {"type": "string"},
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["id", "delivery_id", "webhook_id", "url", "event", "state", "attempts"],
        "properties": {
            "id": {"type": "integer"},
            "delivery_id": {"type": "string", "description": "X-Healthd-Delivery / webhook-id"},
            "webhook_id": {"type": "integer"},
            "url": {"type": "string", "description": "scheme://host[:port] only"},
            "format": {"type": "string", "enum": ["healthd", "slack", "standard"]},
            "event": {"type": "string"},
            "history_id": {"type": "integer"},
            "source_id": NSTR,
            "state": {"type": "string", "enum": ["pending", "delivered", "given_up"]},
            "attempts": {"type": "integer"},
            "last_status": {"type": ["integer", "null"]},
            "last_error": NSTR,
            "next_attempt_at": TS,
            "delivered_at": TS,
            "gave_up_at": TS,
            "created_at": TS,
        },
    },
}


def document() -> dict[str, Any]:
    events_list: dict[str, Any] = {
        "type": "object",
        "required": ["events", "count"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "count": {"type": "integer"},
        },
    }
    paths: dict[str, Any] = {
        "/api/v1/sources": _get(
            "List sources",
            _json(
                {
                    "type": "object",
                    "required": ["sources", "count"],
                    "properties": {
                        "sources": {"type": "array", "items": _ref("Source")},
                        "count": {"type": "integer"},
                        "next_cursor": NSTR,
                    },
                }
            ),
            [
                _q(
                    "status", {"type": "string", "pattern": STATUS_LIST}, "comma-separated statuses"
                ),
                _q("plugin", {"type": "string"}, "plugin name"),
                _q("enabled", {"type": "string", "enum": ["true", "false"]}, "enabled or not"),
                LIMIT,
                _q(
                    "cursor",
                    {"type": "string", "minLength": 1, "maxLength": 50},
                    "next_cursor of the previous page (its last id)",
                ),
            ],
        ),
        "/api/v1/sources/{source_id}": _get(
            "One source", _json(_ref("Source")), [SOURCE_ID], NOT_FOUND
        ),
        "/api/v1/sources/{source_id}/events": _get(
            "A source's events, newest first",
            _json(events_list),
            [
                SOURCE_ID,
                LIMIT,
                _q(
                    "before",
                    {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                    "only events older than this id",
                ),
            ],
            NOT_FOUND,
        ),
        "/api/v1/events": _get(
            "Every source's events after an id, oldest first",
            _json(
                {
                    **events_list,
                    "properties": {**events_list["properties"], "next_after": {"type": "integer"}},
                }
            ),
            [
                _q(
                    "after",
                    {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX, "default": 0},
                    "history id to continue after",
                ),
                LIMIT,
            ],
        ),
        "/api/v1/summary": _get(
            "Counts per status, flapping, daemon freshness",
            _json(
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
        "/api/v1/stream": _get(
            "Server-Sent Events: `status` (transition) and `flapping` events; id = history id",
            {
                "description": "an event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
                }
            ],
        ),
        "/api/ai/connections": _get(
            "The original AI connection route",
            _json(
                {
                    "type": "object",
                    "required": ["endpoint", "apiKey", "enabled", "lastTested", "testStatus"],
                    "properties": {
                        "endpoint": {"type": "string", "enum": ["configured", "not_configured"]},
                        "apiKey": {"type": "string", "enum": [""]},
                        "enabled": {"type": "boolean"},
                        "lastTested": TS,
                        "testStatus": NSTR,
                    },
                }
            ),
        ),
        "/api/ai/connection-status": _get(
            "The original AI status route",
            _json(
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
                    "properties": {
                        "status": {"type": "string", "enum": ["enabled", "disabled"]},
                        "lastTested": TS,
                        "testStatus": NSTR,
                        "endpoint": {"type": "string"},
                        "connectionStatus": STATUS,
                        "errorMessage": NSTR,
                    },
                }
            ),
        ),
        "/api/v1/maintenance": _get(
            "Maintenance windows open now or to come",
            _json(
                {
                    "type": "object",
                    "required": ["windows", "count"],
                    "properties": {
                        "windows": {"type": "array", "items": _ref("MaintenanceWindow")},
                        "count": {"type": "integer"},
                    },
                }
            ),
        ),
        "/api/v1/webhooks/deliveries": _get(
            "The webhook delivery log, newest first",
            _json(
                {
                    "type": "object",
                    "required": ["deliveries", "count"],
                    "properties": {
                        "deliveries": {"type": "array", "items": _ref("Delivery")},
                        "count": {"type": "integer"},
                        "next_before": {"type": ["integer", "null"]},
                    },
                }
            ),
            [
                _q("webhook", {"type": "integer", "minimum": 1}, "only this webhook's"),
                _q("failed", {"type": "string", "enum": ["true", "false"]}, "only failed ones"),
                LIMIT,
                _q(
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
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/readyz": _get(
            "Readiness: database answers and a daemon heartbeat is fresh", _json({"type": "object"})
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {
                "description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        ),
        "/openapi.json": _get("This document", _json({"type": "object"})),
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
                "BadRequest": _json(_ref("Error"), "bad parameter"),
                "Unauthorized": _json(_ref("Error"), "missing or wrong bearer token"),
                "NotFound": _json(_ref("Error"), "no such source"),
                "Unavailable": {
                    **_json(_ref("Error"), "database unreachable"),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                },
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
