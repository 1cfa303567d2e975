"""One feed of every source's transitions, for catching up by history id."""

from __future__ import annotations

from flask import Blueprint, Response

from statusapi.data import queries, shapes
from statusapi.web import params
from statusapi.web.render import json_response

bp = Blueprint("events", __name__)


@bp.get("/api/v1/events")
def events() -> Response:
    after = params.integer("after", 0, 0)
    limit = params.integer("limit", 100, 1, 1000)
    assert after is not None and limit is not None
    rows = queries.events_after(after, limit)
    return json_response(
        {
            "events": [shapes.event(r) for r in rows],
            "count": len(rows),
            "next_after": rows[-1]["id"] if rows else after,
        }
    )
