"""Sources, their events, and the summary."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from statusapi.data import queries, shapes
from statusapi.web import params
from statusapi.web.errors import ApiError
from statusapi.web.render import json_response

bp = Blueprint("sources", __name__)


@bp.get("/api/v1/sources")
def list_sources() -> Response:
    limit = params.integer("limit", 100, 1, 1000)
    assert limit is not None
    cfg = current_app.config
    rows = queries.list_source_rows(
        params.statuses(),
        params.text("plugin"),
        params.boolean("enabled"),
        params.cursor(),
        limit + 1,
        cfg["DEFAULT_RISE"],
        cfg["DEFAULT_FALL"],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response(
        {
            "sources": [shapes.source(r) for r in rows],
            "count": len(rows),
            "next_cursor": rows[-1][0] if more else None,
        }
    )


@bp.get("/api/v1/sources/<source_id>")
def get_source(source_id: str) -> Response:
    cfg = current_app.config
    row = queries.get_source_row(source_id, cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    if row is None:
        raise ApiError(404, "not_found", f"no source with id {source_id!r}")
    return json_response(shapes.source(row))


@bp.get("/api/v1/sources/<source_id>/events")
def source_events(source_id: str) -> Response:
    limit = params.integer("limit", 100, 1, 1000)
    before = params.integer("before", None, 1)
    assert limit is not None
    rows = queries.source_events(source_id, limit, before)
    if not rows and not queries.source_exists(source_id):
        raise ApiError(404, "not_found", f"no source with id {source_id!r}")
    return json_response({"events": [shapes.event(r) for r in rows], "count": len(rows)})


@bp.get("/api/v1/summary")
def summary() -> Response:
    row = queries.summary()
    fresh = queries.daemon_freshness()
    max_age = current_app.config["HEARTBEAT_MAX_AGE"]
    age = fresh["age_s"]
    return json_response(
        {
            "counts": {k: row[k] for k in params.STATUSES},
            "total": row["total"],
            "enabled": row["enabled"],
            "flapping": row["flapping"],
            "generated_at": row["generated_at"],
            "daemon": {
                "fresh": age is not None and age <= max_age,
                "nodes": fresh["nodes"],
                "last_heartbeat_at": fresh["last_heartbeat_at"],
                "age_s": round(age, 3) if age is not None else None,
                "max_age_s": max_age,
            },
        }
    )
