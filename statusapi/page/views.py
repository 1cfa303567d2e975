"""The status page: GET / (redirect), /status and /status/<id>. HTML, server-rendered and
complete without JavaScript; static/status.js makes it live from the SSE stream."""

from __future__ import annotations

import gzip
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from statusapi.data import figures, queries, shapes
from statusapi.page import pageview, timelines
from statusapi.web import params
from statusapi.web.errors import ApiError

bp = Blueprint("page", __name__)

RECENT = 20
ROWS_CACHED = 20_000
# the columns a row of /status shows (with its latency, since-when and figures)
_SHOWN = (
    "name",
    "type",
    "enabled",
    "connection_status",
    "pending_status",
    "pending_count",
    "needed",
    "flapping",
    "status_changed_at",
    "in_maintenance",
    "unreachable_via",
)
COLLAPSE_OVER = 30  # on a page longer than this, an all-connected group starts collapsed
GZIP_OVER = 1400


def init_app(app: Flask) -> None:
    # static files: ETag + a day's caching; the URL carries a hash of the content, so a
    # new release is fetched at once
    if app.config.get("SEND_FILE_MAX_AGE_DEFAULT") is None:
        app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 86400
    folder = Path(app.static_folder or "")
    versions = {
        p.name: hashlib.blake2b(p.read_bytes(), digest_size=6).hexdigest()
        for p in folder.glob("*")
        if p.is_file()
    }

    @app.context_processor
    def static_url() -> dict[str, Any]:
        def asset(name: str) -> str:
            return url_for("static", filename=name, v=versions.get(name, "0"))

        return {"asset": asset}


def _html(body: str) -> Response:
    """HTML, gzip-compressed for clients that accept it: a 90-cell day bar per source is
    repetitive markup that compresses about tenfold."""
    resp = Response(body, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Vary"] = "Accept-Encoding"
    if len(body) > GZIP_OVER and "gzip" in request.headers.get("Accept-Encoding", ""):
        data = resp.get_data()
        # a long page is megabytes of markup: level 1 is several times faster than the
        # default and still shrinks it twentyfold
        resp.set_data(gzip.compress(data, compresslevel=1 if len(data) > 1_000_000 else 6))
        resp.headers["Content-Encoding"] = "gzip"
    return resp


@bp.get("/")
def root() -> BaseResponse:
    return redirect(url_for("page.status"), code=302)


def _freshness(now: float) -> dict[str, Any]:
    fresh = queries.daemon_freshness()
    max_age = current_app.config["HEARTBEAT_MAX_AGE"]
    age = fresh["age_s"]
    return {
        "age_s": age,
        "fresh": age is not None and age <= max_age,
        "heartbeat": now - age if age is not None else None,
        "label": "never" if age is None else pageview.duration(age) + " ago",
        "max_age": max_age,
    }


def _row(src: dict[str, Any], fig: timelines.SourceFigures | None, now: float) -> dict[str, Any]:
    changed: datetime | None = src["status_changed_at"]
    pending = None
    if src["pending_status"]:
        pending = f"{src['pending_count']}/{src['needed']} toward {src['pending_status']}"
    row = {
        **src,
        "since": pageview.duration(now - changed.timestamp()) if changed else None,
        "pending": pending,
        "latency": f"{src['latency_ms']:.0f} ms" if src["latency_ms"] is not None else "–",
    }
    if fig is not None:
        row["uptime"] = {k: pageview.percent(v["uptime"]) for k, v in fig.windows.items()}
        bar = fig.cached.get("bar")
        if bar is None:
            bar = fig.cached["bar"] = pageview.bar(fig.daily)
        row["bar"] = bar
    return row


def _rendered_rows(app: Flask) -> dict[str, tuple[tuple[Any, ...], Markup]]:
    """The per-worker cache of rendered rows, by source id."""
    cache: dict[str, tuple[tuple[Any, ...], Markup]] = app.extensions.setdefault(
        "healthd_page_rows", {}
    )
    return cache


def _counts(sources: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Enabled sources per status (and how many are in maintenance), and how many of the
    down ones are inside a maintenance window."""
    counts = dict.fromkeys((*pageview.WORDS, "maintenance"), 0)
    down_in_maintenance = 0
    for s in sources:
        if s["enabled"]:
            counts[s["connection_status"]] += 1
            if s["in_maintenance"]:
                counts["maintenance"] += 1
                down_in_maintenance += s["connection_status"] in ("disconnected", "error")
    return counts, down_in_maintenance


@bp.get("/status")
def status() -> Response:
    cfg = current_app.config
    head, now = queries.page_head()
    sources = queries.page_sources(cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    tls = timelines.of(current_app)
    tls.refresh()
    budget = [timelines.REFRESH_PER_REQUEST]
    prefix = url_for("page.status") + "/"
    long_page = len(sources) > COLLAPSE_OVER
    # on a long page a group whose sources are all connected is collapsed to one line, and
    # its rows are the short kind (no day bar): the page stays readable, and light
    collapsed: dict[str, bool] = {}
    for s in sources:
        up = s["connection_status"] == "connected"
        collapsed[s["type"]] = long_page and collapsed.get(s["type"], True) and up
    groups: dict[str, list[Markup]] = {}
    rendered = _rendered_rows(current_app)
    for s in sources:
        fig = tls.figures(s["id"], s["created_s"], now, budget)
        mini = collapsed[s["type"]]
        # a row is re-rendered only when something it shows has changed
        changed = s["status_changed_at"]
        since = pageview.duration(now - changed.timestamp()) if changed else None
        lat = s["latency_ms"]
        key = (
            *(s[k] for k in _SHOWN),
            None if lat is None else round(lat),
            since,
            fig.serial,
            mini,
            prefix,
        )
        hit = rendered.get(s["id"])
        if hit is None or hit[0] != key:
            render = pageview.mini_row_html if mini else pageview.row_html
            html = Markup(render(_row(s, fig, now), prefix + quote(s["id"], "")))
            if len(rendered) >= ROWS_CACHED:
                rendered.clear()
            hit = rendered[s["id"]] = (key, html)
        groups.setdefault(s["type"], []).append(hit[1])
    counts, down_in_maintenance = _counts(sources)
    overall, sentence = pageview.overall(counts, down_in_maintenance)
    body = render_template(
        "status.html",
        head=head,
        now=now,
        overall=overall,
        sentence=sentence,
        counts=counts,
        fresh=_freshness(now),
        groups=[(name, rows, len(rows), collapsed[name]) for name, rows in groups.items()],
        recent=queries.recent_transitions(None, RECENT),
        total=len(sources),
    )
    return _html(body)


@bp.get("/status/<source_id>")
def detail(source_id: str) -> Response:
    cfg = current_app.config
    window = params.text("window") or "1h"
    if window not in figures.LATENCY_WINDOWS:
        raise params.bad("window", f"must be one of {', '.join(figures.LATENCY_WINDOWS)}")
    head, now = queries.page_head()
    src = queries.page_source(source_id, cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    found = figures.timeline(source_id)
    if src is None or found is None:
        raise ApiError(404, "not_found", f"no source with id {source_id!r}")
    tl, now = found
    windows = tl.windows(now)
    row = _row(src, None, now)
    uptime = {k: pageview.percent(v["uptime"]) for k, v in windows.items()}
    row["bar"] = pageview.bar(tl.daily(now))
    span, step = figures.LATENCY_WINDOWS[window]
    buckets = figures.latency(source_id, window)
    for b in buckets:
        b["start"] = b["start"].timestamp()
    chart = pageview.latency_chart(
        buckets,
        now - span,
        now,
        f"Latency of {src['name']}, last {window} (p50 and p95, ms)",
        step,
    )
    body = render_template(
        "detail.html",
        conditions=_conditions(src["plugin"], src["config_text"]),
        head=head,
        now=now,
        src=row,
        state=Markup(pageview.state_html(row)),
        uptimes=Markup(pageview.uptimes_html(uptime, ("24h", "7d", "30d", "90d"))),
        windows=windows,
        duration=pageview.duration,
        percent=pageview.percent,
        chart=chart,
        window=window,
        windows_latency=list(figures.LATENCY_WINDOWS),
        transitions=queries.recent_transitions(source_id, 50),
        config=shapes.redacted_config(src["plugin"], src["config_text"]),
        fresh=_freshness(now),
    )
    return _html(body)


def _conditions(plugin: str, config_text: str) -> list[str]:
    """An http source's conditions on its answer, as lines a person reads (from the
    config as shown, secrets redacted)."""
    from healthd.plugins import conditions

    config = shapes.redacted_config(plugin, config_text)
    if plugin != "http" or not isinstance(config, dict):
        return []
    return conditions.describe(config)
