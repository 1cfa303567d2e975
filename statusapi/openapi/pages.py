"""The OpenAPI paths of the status page, uptime, latency, badges and the WebSocket
(docs/status-page.md)."""

from __future__ import annotations

from typing import Any

from healthd.core.phases import NAMES as PHASES
from statusapi.openapi.parts import (
    AFTER,
    NO_NUL,
    NOT_FOUND,
    SOURCE_ID,
    get_op,
    ok_json,
    query,
)
from statusapi.page import badge_svg

# -- the status page, uptime, latency, badges, WebSocket (docs/status-page.md) ---------

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
_SVG_CONTENT: dict[str, Any] = {"image/svg+xml": {"schema": {"type": "string"}}}
# the shields.io endpoint badge's schema (only the keys shields accepts)
_SHIELDS = {
    "type": "object",
    "required": ["schemaVersion", "label", "message", "color"],
    "additionalProperties": False,
    "properties": {
        "schemaVersion": {"const": 1},
        "label": {"type": "string"},
        "message": {"type": "string", "minLength": 1},
        "color": {"type": "string"},
        "labelColor": {"type": "string"},
        "isError": {"type": "boolean", "description": "present (true) on a 400 or 404"},
        "style": {"type": "string", "enum": list(badge_svg.STYLES)},
    },
}
_SHIELDS_JSON: dict[str, Any] = {"application/json": {"schema": _SHIELDS}}


_LABEL = query(
    "label",
    {"type": "string", "pattern": NO_NUL},
    f"the left text instead of the default; empty leaves it out; longer than"
    f" {badge_svg.LABEL_MAX} characters is cut at a word with an ellipsis",
)
_STYLE = query(
    "style",
    {"type": "string", "enum": list(badge_svg.STYLES), "default": badge_svg.DEFAULT_STYLE},
    "the SVG's style (passed on in the JSON when given)",
)
_WINDOW_PATH = {
    "name": "window",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["24h", "7d", "30d", "90d"]},
}


def _badge_op(summary: str, content: dict[str, Any], params: list[dict[str, Any]]) -> Any:
    """A badge route: its errors are badges too (a README shows a JSON error as a broken
    image), so the 400 and 404 have the badge's own content type."""
    return get_op(
        summary,
        {"description": "the badge", "content": content},
        [*params, _LABEL, _STYLE],
        {
            "400": {"description": "a bad label or style: a grey badge", "content": content},
            "404": {"description": "no such source or window: a grey badge", "content": content},
        },
    )


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
        "required": ["start", "count", "failures", "p50_ms", "p95_ms", "max_ms", "phases"],
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "count": {"type": "integer"},
            "failures": {"type": "integer"},
            "p50_ms": {"type": ["number", "null"]},
            "p95_ms": {"type": ["number", "null"]},
            "max_ms": {"type": ["number", "null"]},
            "phases": {
                "type": ["object", "null"],
                "description": "HTTP probes: the mean time of each phase over the bucket's"
                " successful probes (blackbox_exporter's phases); null for other plugins",
                "required": [f"{n}_ms" for n in PHASES],
                "properties": {f"{n}_ms": {"type": "number"} for n in PHASES},
            },
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
    window_q = query(
        "window", {"type": "string", "enum": ["1h", "24h", "7d"], "default": "1h"}, "time span"
    )
    return {
        "/": {
            "get": {
                "summary": "Redirects to /status",
                "responses": {"302": {"description": "to the status page"}},
            }
        },
        "/status": get_op(
            "The status page (HTML; live with JavaScript). A page of more than 30 sources"
            " shows each group's failing and pending first and links to the whole group",
            _HTML,
            [
                query(
                    "group",
                    {"type": "string", "minLength": 1, "maxLength": 50, "pattern": NO_NUL},
                    "one type's sources only, the failing first, 100 a page",
                ),
                query(
                    "page",
                    {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1},
                    "the page of the group (needs group)",
                ),
            ],
            NOT_FOUND,
        ),
        "/status/{source_id}": get_op(
            "One source's status page (HTML)",
            _HTML,
            [SOURCE_ID, window_q],
            NOT_FOUND,
        ),
        "/api/v1/sources/{source_id}/uptime": get_op(
            "Exact uptime from the transitions: four windows and 90 daily figures",
            ok_json(uptime),
            [SOURCE_ID],
            NOT_FOUND,
        ),
        "/api/v1/sources/{source_id}/latency": get_op(
            "Latency percentiles from the daemon's rollups",
            ok_json(latency),
            [SOURCE_ID, window_q],
            NOT_FOUND,
        ),
        "/badge/{source_id}.svg": _badge_op(
            "A badge with the source's status word (label: its name)",
            _SVG_CONTENT,
            [SOURCE_ID],
        ),
        "/badge/{source_id}.json": _badge_op(
            "The same badge as shields.io endpoint JSON", _SHIELDS_JSON, [SOURCE_ID]
        ),
        "/badge/{source_id}/uptime-{window}.svg": _badge_op(
            "A badge with the source's uptime over a window",
            _SVG_CONTENT,
            [SOURCE_ID, _WINDOW_PATH],
        ),
        "/badge/{source_id}/uptime-{window}.json": _badge_op(
            "The same uptime badge as shields.io endpoint JSON",
            _SHIELDS_JSON,
            [SOURCE_ID, _WINDOW_PATH],
        ),
        "/api/v1/ws": get_op(
            "WebSocket: the stream's events as JSON text frames {id, event, data}",
            {"description": "never sent: the connection is upgraded"},
            [AFTER],
            {"101": {"description": "switching to the WebSocket protocol"}},
        ),
    }
