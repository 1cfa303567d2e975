"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app

from healthd.core import schema
from statusapi import metrics
from statusapi.data import queries
from statusapi.openapi.document import document
from statusapi.web.errors import error_response
from statusapi.web.render import json_response

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    queries.ping()  # an unreachable database raises a 503 with Retry-After
    problem = schema_problem()
    if problem:
        return error_response(503, "schema_unknown", problem, {"Retry-After": "5"})
    fresh = queries.daemon_freshness()
    max_age = current_app.config["HEARTBEAT_MAX_AGE"]
    if fresh["age_s"] is None:
        return error_response(
            503, "not_ready", "no daemon has ever sent a heartbeat", {"Retry-After": "5"}
        )
    if fresh["age_s"] > max_age:
        return error_response(
            503,
            "not_ready",
            f"the freshest daemon heartbeat is {fresh['age_s']:.0f} s old (limit {max_age:g} s)",
            {"Retry-After": "5"},
        )
    return json_response({"status": "ready", "daemon_heartbeat_age_s": round(fresh["age_s"], 3)})


def schema_problem() -> str:
    """Why this database's schema is not the one this healthd knows, or "" (the same
    verdict the daemon waits on: healthd/daemon/schemagate.py)."""
    rows = queries.schema_migrations()
    applied = None if rows is None else [schema.Applied(r["version"], r["name"]) for r in rows]
    return schema.judge(applied, _known()).problem


@functools.cache
def _known() -> dict[int, str]:
    from healthd.store.migrate import known  # the files shipped with this healthd

    return known()


@bp.get("/metrics")
def prometheus() -> Response:
    return Response(
        # a daemon whose heartbeat is older than a few missed beats is gone: its series go
        metrics.render(
            max(60.0, current_app.config["HEARTBEAT_MAX_AGE"]),
            current_app.config["METRICS_MAX_SOURCES"],
            (current_app.config["DEFAULT_RISE"], current_app.config["DEFAULT_FALL"]),
        ),
        mimetype="text/plain",
        content_type="text/plain; version=0.0.4; charset=utf-8",
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(document())
