"""GET /api/v1/sources/<id>/uptime and /latency: exact uptime and latency percentiles."""

from __future__ import annotations

from flask import Blueprint, Response

from statusapi.data import figures, queries
from statusapi.web import params
from statusapi.web.errors import ApiError
from statusapi.web.render import json_response

bp = Blueprint("figures", __name__)


def _not_found(source_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no source with id {source_id!r}")


@bp.get("/api/v1/sources/<source_id>/uptime")
def uptime(source_id: str) -> Response:
    body = figures.uptime(source_id)
    if body is None:
        raise _not_found(source_id)
    return json_response(body)


@bp.get("/api/v1/sources/<source_id>/latency")
def latency(source_id: str) -> Response:
    window = params.choice("window", figures.LATENCY_WINDOWS, "1h")
    buckets = figures.latency(source_id, window)
    if not buckets and not queries.source_exists(source_id):
        raise _not_found(source_id)
    return json_response({"source_id": source_id, "window": window, "buckets": buckets})
