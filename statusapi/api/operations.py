"""Operations, read-only (docs/operations.md, docs/notifications.md): maintenance windows and
the webhook delivery log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from healthd.notify.urls import shown_delivery
from statusapi.data import queries
from statusapi.web import params
from statusapi.web.render import json_response

bp = Blueprint("operations", __name__)
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@bp.get("/api/v1/maintenance")
def maintenance() -> Response:
    windows = [_window(r) for r in queries.maintenance_windows()]
    return json_response({"windows": windows, "count": len(windows)})


def _window(r: dict[str, Any]) -> dict[str, Any]:
    every = None
    if r["every_time"] is not None:
        day = None if r["every_dow"] is None else DAYS[r["every_dow"]]
        every = {"day": day, "time": r["every_time"], "tz": r["tz"], "duration_s": r["duration_s"]}
    return {
        "id": r["id"],
        "source_ids": r["source_ids"],
        "all_sources": r["source_ids"] is None,
        "starts_at": r["starts_at"],
        "ends_at": r["ends_at"],
        "every": every,
        "active": r["active"],
        "current_or_next": {"start": r["current_start"], "end": r["current_end"]},
        "reason": r["reason"],
    }


@bp.get("/api/v1/webhooks/deliveries")
def deliveries() -> Response:
    limit = params.integer("limit", 100, 1, 1000)
    assert limit is not None
    rows = queries.deliveries(
        params.integer("webhook", None, 1, params.INT_MAX),
        bool(params.boolean("failed")),
        params.integer("before", None, 1),
        limit,
    )
    rows = [shown_delivery(r) for r in rows]
    return json_response(
        {
            "deliveries": rows,
            "count": len(rows),
            "next_before": rows[-1]["id"] if len(rows) == limit else None,
        }
    )
