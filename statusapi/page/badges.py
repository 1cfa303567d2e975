"""GET /badge/<id>.svg and /badge/<id>/uptime-<window>.svg: badges for READMEs."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from statusapi.data import figures, queries
from statusapi.data.uptime import WINDOWS
from statusapi.middleware import conditional
from statusapi.page import badge_svg as badge
from statusapi.web.errors import ApiError

bp = Blueprint("badges", __name__)

# Short: a README's image proxy re-fetches soon, and the ETag makes that a 304.
CACHE = "public, max-age=60, stale-while-revalidate=60"


def _svg(body: str) -> Response:
    resp = conditional(Response(body, mimetype="image/svg+xml"))
    resp.headers["Cache-Control"] = CACHE
    return resp


def _not_found(source_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no source with id {source_id!r}")


@bp.get("/badge/<source_id>.svg")
def status_badge(source_id: str) -> Response:
    cfg = current_app.config
    row = queries.page_source(source_id, cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    if row is None:
        raise _not_found(source_id)
    word = row["connection_status"]
    return _svg(badge.svg(row["name"], word, badge.STATUS_COLOURS.get(word, "#5f6368")))


@bp.get("/badge/<source_id>/uptime-<window>.svg")
def uptime_badge(source_id: str, window: str) -> Response:
    if window not in WINDOWS:
        raise ApiError(
            404, "not_found", f"no uptime window {window!r} (one of {', '.join(WINDOWS)})"
        )
    found = figures.timeline(source_id)
    if found is None:
        raise _not_found(source_id)
    tl, now = found
    pct = tl.between(now - WINDOWS[window], now, now)["uptime"]
    assert pct is None or isinstance(pct, float)
    return _svg(badge.svg(f"uptime {window}", badge.uptime_text(pct), badge.uptime_colour(pct)))
