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
# the original /api/ai/* routes: JavaScript toISOString(), milliseconds and Z
TS_MS = {
    "type": ["string", "null"],
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
}


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


# PostgreSQL text cannot hold NUL, and the API refuses it anywhere in a request (400): the
# schema of every string parameter says so, so the document and the behaviour agree
NO_NUL = "^[^\\u0000]*$"

SOURCE_ID = {
    "name": "source_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": NO_NUL},
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
                _q("plugin", {"type": "string", "pattern": NO_NUL}, "plugin name"),
                _q("enabled", {"type": "string", "enum": ["true", "false"]}, "enabled or not"),
                LIMIT,
                _q(
                    "cursor",
                    {"type": "string", "minLength": 1, "maxLength": 50, "pattern": NO_NUL},
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
                                    "contentSchema": _ref("Event"),
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
        "/api/ai/connections": _get(
            "The original AI connection route",
            _json(
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


# -- the status page, uptime, latency, badges, WebSocket (README: Status page) ---------

AFTER = _q(
    "after",
    {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
    "resume after this history id (Last-Event-ID, when sent, wins)",
)
_FIGS = {
    "type": "object",
    "required": ["uptime", "up_s", "down_s", "unknown_s", "maintenance_s"],
    "properties": {
        "uptime": {
            "type": ["number", "null"],
            "description": "percent: up_s / (up_s + down_s); null with neither",
        },
        "up_s": {"type": "number"},
        "down_s": {"type": "number", "description": "seconds disconnected or error"},
        "unknown_s": {"type": "number", "description": "seconds unknown: not counted"},
        "maintenance_s": {"type": "number", "description": "seconds in maintenance: not counted"},
    },
}
_HTML = {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
_SVG = {"description": "an SVG badge", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}
_WINDOW_PATH = {
    "name": "window",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["24h", "7d", "30d", "90d"]},
}


def page_paths() -> dict[str, Any]:
    uptime = {
        "type": "object",
        "required": ["source_id", "windows", "daily"],
        "properties": {
            "source_id": {"type": "string"},
            "windows": {
                "type": "object",
                "properties": {k: _FIGS for k in ("24h", "7d", "30d", "90d")},
            },
            "daily": {
                "type": "array",
                "minItems": 90,
                "maxItems": 90,
                "description": "the last 90 UTC days, oldest first; today up to now",
                "items": {
                    "type": "object",
                    "required": ["date", "uptime", "down_s"],
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        "uptime": {"type": ["number", "null"]},
                        "down_s": {"type": "number"},
                    },
                },
            },
        },
    }
    bucket = {
        "type": "object",
        "required": ["start", "count", "failures", "p50_ms", "p95_ms", "max_ms"],
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "count": {"type": "integer"},
            "failures": {"type": "integer"},
            "p50_ms": {"type": ["number", "null"]},
            "p95_ms": {"type": ["number", "null"]},
            "max_ms": {"type": ["number", "null"]},
        },
    }
    latency = {
        "type": "object",
        "required": ["source_id", "window", "buckets"],
        "properties": {
            "source_id": {"type": "string"},
            "window": {"type": "string"},
            "buckets": {"type": "array", "items": bucket},
        },
    }
    window_q = _q(
        "window", {"type": "string", "enum": ["1h", "24h", "7d"], "default": "1h"}, "time span"
    )
    return {
        "/": {
            "get": {
                "summary": "Redirects to /status",
                "responses": {"302": {"description": "to the status page"}},
            }
        },
        "/status": _get("The status page (HTML; live with JavaScript)", _HTML),
        "/status/{source_id}": _get(
            "One source's status page (HTML)",
            _HTML,
            [SOURCE_ID, window_q],
            NOT_FOUND,
        ),
        "/api/v1/sources/{source_id}/uptime": _get(
            "Exact uptime from the transitions: four windows and 90 daily figures",
            _json(uptime),
            [SOURCE_ID],
            NOT_FOUND,
        ),
        "/api/v1/sources/{source_id}/latency": _get(
            "Latency percentiles from the daemon's rollups",
            _json(latency),
            [SOURCE_ID, window_q],
            NOT_FOUND,
        ),
        "/badge/{source_id}.svg": _get(
            "A badge with the source's status word", _SVG, [SOURCE_ID], NOT_FOUND
        ),
        "/badge/{source_id}/uptime-{window}.svg": _get(
            "A badge with the source's uptime over a window",
            _SVG,
            [SOURCE_ID, _WINDOW_PATH],
            NOT_FOUND,
        ),
        "/api/v1/ws": _get(
            "WebSocket: the stream's events as JSON text frames {id, event, data}",
            {"description": "never sent: the connection is upgraded"},
            [AFTER],
            {"101": {"description": "switching to the WebSocket protocol"}},
        ),
    }
