"""GET /badge/<id>.svg|.json and /badge/<id>/uptime-<window>.svg|.json: badges for READMEs.

A badge route answers a badge even when it cannot answer the question (an unknown source
is a grey "not found" badge with status 404, a bad parameter one with 400): a README
shows a JSON error as a broken image. The .json routes are shields.io "endpoint" JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request

from statusapi.data import figures, queries
from statusapi.data.uptime import WINDOWS
from statusapi.middleware import conditional
from statusapi.page import badge_svg as badge

bp = Blueprint("badges", __name__)

# Short: a README's image proxy re-fetches soon, and the ETag makes that a 304.
CACHE = "public, max-age=60, stale-while-revalidate=60"


@dataclass(frozen=True)
class Options:
    """What the query string asks of a badge: ``?label=`` (an empty one leaves the left
    part out, as on shields) and ``?style=``."""

    label: str | None
    style: str
    style_given: bool

    def label_or(self, default: str) -> str:
        return default if self.label is None else self.label


class BadParameter(Exception):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.name, self.problem = name, problem


def _param(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadParameter(name, "given twice")
    return values[0] if values else None


def _options() -> Options:
    label, style = _param("label"), _param("style")
    if style is not None and style not in badge.STYLES:
        raise BadParameter("style", f"not {' or '.join(badge.STYLES)}")
    return Options(label, style or badge.DEFAULT_STYLE, style is not None)


def _badge(
    kind: str, status: int, label: str, message: str, colour: str, opts: Options | None = None
) -> Response:
    """The badge as SVG or as the shields endpoint's JSON, with ``status``: an error is a
    badge too."""
    style = opts.style if opts else badge.DEFAULT_STYLE
    if kind == "json":
        doc = badge.endpoint(label, message, colour, style if opts and opts.style_given else None)
        if status >= 400:
            doc["isError"] = True
        resp = Response(json.dumps(doc), status, mimetype="application/json")
    else:
        resp = Response(badge.svg(label, message, colour, style), status, mimetype="image/svg+xml")
    if status == 200:
        resp = conditional(resp)
    resp.headers["Cache-Control"] = CACHE
    return resp


def _bad(kind: str, exc: BadParameter) -> Response:
    return _badge(kind, 400, exc.name, exc.problem, badge.UNKNOWN_GREY)


@bp.get("/badge/<source_id>.svg", defaults={"kind": "svg"})
@bp.get("/badge/<source_id>.json", defaults={"kind": "json"})
def status_badge(source_id: str, kind: str) -> Response:
    try:
        opts = _options()  # a bad parameter is answered before the database is asked
    except BadParameter as exc:
        return _bad(kind, exc)
    cfg = current_app.config
    row = queries.page_source(source_id, cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    if row is None:
        return _badge(kind, 404, opts.label_or("status"), "not found", badge.UNKNOWN_GREY, opts)
    word = row["connection_status"]
    colour = badge.STATUS_COLOURS.get(word, badge.UNKNOWN_GREY)
    return _badge(kind, 200, opts.label_or(row["name"]), word, colour, opts)


@bp.get("/badge/<source_id>/uptime-<window>.svg", defaults={"kind": "svg"})
@bp.get("/badge/<source_id>/uptime-<window>.json", defaults={"kind": "json"})
def uptime_badge(source_id: str, window: str, kind: str) -> Response:
    try:
        opts = _options()
    except BadParameter as exc:
        return _bad(kind, exc)
    label = opts.label_or(f"uptime {window}")
    if window not in WINDOWS:
        return _badge(kind, 404, label, f"not {'|'.join(WINDOWS)}", badge.UNKNOWN_GREY, opts)
    found = figures.source_uptime(source_id)
    if found is None:
        return _badge(kind, 404, label, "not found", badge.UNKNOWN_GREY, opts)
    pct = found[0][window]["uptime"]
    assert pct is None or isinstance(pct, float)
    return _badge(kind, 200, label, badge.uptime_text(pct), badge.uptime_colour(pct), opts)
