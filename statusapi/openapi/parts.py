"""The OpenAPI document's building blocks: parameter and response helpers and the
component schemas (Source, Event, ...), shared by statusapi/openapi/document.py and
statusapi/openapi/pages.py."""

from __future__ import annotations

from typing import Any

from healthd.core import fields
from healthd.core.fields import STATUS_SCHEMA
from healthd.core.words import EVENT_KINDS, STATUSES
from healthd.notify.formats import FORMATS

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1  # webhook ids are serial (integer)
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


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def ok_json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def get_op(
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
LIMIT = query(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size"
)

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
        # the columns from healthd/core/fields.py; "pending" is computed (statusapi/data/shapes.py)
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
            "url": {
                "type": "string",
                "description": "scheme://host[:port] only (scheme://… where an Apprise URL's"
                " host is its token), or where a URL given by reference is read: (URL in $NAME)",
            },
            "format": {"type": "string", "enum": list(FORMATS)},
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

AFTER = query(
    "after",
    {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
    "resume after this history id (Last-Event-ID, when sent, wins)",
)
