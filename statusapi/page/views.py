"""The status page: GET / (redirect), /status and /status/<id>. HTML, server-rendered and
complete without JavaScript; static/status.js makes it live from the SSE stream."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from datetime import datetime
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

from healthd.core import fields
from healthd.core.words import CONNECTED, DOWN, ERROR, SUCCESS, UNKNOWN
from statusapi.data import figures, queries, shapes
from statusapi.page import assets, pageview, timelines
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


# A long page is bounded: each group shows at most its share of OVERVIEW_ROWS rows (never
# fewer than GROUP_ROWS_MIN), the failing and pending first, and links to the whole group
# (?group=<type>), which is paged PAGE_ROWS at a time. 5,000 sources were 43.6 MB of HTML.
OVERVIEW_ROWS = 150
GROUP_ROWS_MIN = 5
PAGE_ROWS = 100


def init_app(app: Flask) -> None:
    assets.init_app(app)

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        # the templates and the script spell no status word of their own
        return {
            "words": pageview.WORDS,
            "down_words": DOWN,
            "result_word": _result_word,
            "bands": (*pageview.BANDS, pageview.NO_DATA),
            "type_label": pageview.type_label,
        }


def _result_word(test_status: str | None) -> str:
    """The status word whose colour a raw result is shown in."""
    return CONNECTED if test_status == SUCCESS else ERROR


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
                down_in_maintenance += s["connection_status"] in DOWN
    return counts, down_in_maintenance


def attention(s: dict[str, Any]) -> int:
    """How soon a reader wants to see a source: down first, then changing (pending or
    flapping), then unknown, then the rest; disabled ones last."""
    if not s["enabled"]:
        return 4
    if s["connection_status"] in DOWN and not s["in_maintenance"]:
        return 0
    if s["pending_status"] or s["flapping"]:
        return 1
    return 2 if s["connection_status"] == UNKNOWN else 3


@dataclass
class Group:
    name: str  # the type
    members: list[dict[str, Any]]  # every source of the type, in the query's order
    shown: list[dict[str, Any]]  # the rows this page renders
    collapsed: bool = False
    href: str | None = None  # the whole group, when some of it is not shown

    @property
    def hidden(self) -> int:
        return len(self.members) - len(self.shown)


def _groups(sources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in sources:
        groups.setdefault(s["type"], []).append(s)
    return groups


def _overview(by_type: dict[str, list[dict[str, Any]]], total: int) -> list[Group]:
    """/status: every row on a short page; on a long one (more than COLLAPSE_OVER) a group
    whose sources are all connected starts collapsed with short rows, and each group shows
    at most its share of OVERVIEW_ROWS, the failing and pending first."""
    if total <= COLLAPSE_OVER:
        return [Group(name, m, m) for name, m in by_type.items()]
    share = max(GROUP_ROWS_MIN, OVERVIEW_ROWS // max(len(by_type), 1))
    out = []
    for name, members in by_type.items():
        shown = sorted(members, key=attention)[:share]
        g = Group(name, members, shown, all(s["connection_status"] == CONNECTED for s in members))
        if g.hidden:
            g.href = url_for("page.status", group=name)
        out.append(g)
    return out


def _group_page(
    by_type: dict[str, list[dict[str, Any]]], name: str, page: int
) -> tuple[Group, dict[str, Any]]:
    """?group=<type>&page=N: one group, the failing and pending first, PAGE_ROWS a page."""
    members = by_type.get(name)
    if not members:
        raise ApiError(404, "not_found", f"no source of type {name!r}")
    pages = math.ceil(len(members) / PAGE_ROWS)
    if page > pages:
        raise ApiError(404, "not_found", f"type {name!r} has {pages} page(s) of sources")
    ordered = sorted(members, key=attention)
    shown = ordered[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]

    def link(n: int) -> str | None:
        if not 1 <= n <= pages:
            return None
        return url_for("page.status", group=name, page=n if n > 1 else None)

    pager = {"page": page, "pages": pages, "prev": link(page - 1), "next": link(page + 1)}
    pager["first"] = (page - 1) * PAGE_ROWS + 1
    pager["last"] = (page - 1) * PAGE_ROWS + len(shown)
    return Group(name, members, shown), pager


def _render_rows(groups: list[Group], now: float) -> list[list[Markup]]:
    """Each group's rows as HTML; a row is re-rendered only when something it shows has
    changed (the per-worker cache), and only the rows shown cost a timeline."""
    tls = timelines.of(current_app)
    tls.refresh()
    budget = [timelines.REFRESH_PER_REQUEST]
    prefix = url_for("page.status") + "/"
    rendered = _rendered_rows(current_app)
    out = []
    for g in groups:
        rows = []
        for s in g.shown:
            fig = tls.figures(s["id"], s["created_s"], now, budget)
            changed = s["status_changed_at"]
            since = pageview.duration(now - changed.timestamp()) if changed else None
            lat = s["latency_ms"]
            key = (
                *(s[k] for k in _SHOWN),
                None if lat is None else round(lat),
                since,
                fig.serial,
                g.collapsed,
                prefix,
            )
            hit = rendered.get(s["id"])
            if hit is None or hit[0] != key:
                render = pageview.mini_row_html if g.collapsed else pageview.row_html
                html = Markup(render(_row(s, fig, now), prefix + quote(s["id"], "")))
                if len(rendered) >= ROWS_CACHED:
                    rendered.clear()
                hit = rendered[s["id"]] = (key, html)
            rows.append(hit[1])
        out.append(rows)
    return out


@bp.get("/status")
def status() -> Response:
    cfg = current_app.config
    group = params.text("group")
    page = params.integer("page", 1, 1, 1_000_000)
    if page is None or (page > 1 and group is None):
        raise params.bad("page", "pages are per group: give group=<type> too")
    head, now = queries.page_head()
    sources = queries.page_sources(cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    by_type = _groups(sources)
    pager = None
    if group is None:
        groups = _overview(by_type, len(sources))
    else:
        one, pager = _group_page(by_type, group, page)
        groups = [one]
    rows = _render_rows(groups, now)
    counts, down_in_maintenance = _counts(sources)
    overall, sentence = pageview.overall(counts, down_in_maintenance)
    body = render_template(
        "status.html",
        head=head,
        now=now,
        overall=overall,
        sentence=sentence,
        counts=counts,
        down_in_maintenance=down_in_maintenance,
        fresh=_freshness(now),
        groups=list(zip(groups, rows, strict=True)),
        group=group,
        pager=pager,
        # the page's script counts from its rows only when every source has one
        partial=sum(len(g.shown) for g in groups) < len(sources),
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
        # as text, so that autoescape shows & < > as they are (tojson writes \u0026)
        config=json.dumps(
            shapes.redacted_config(src["plugin"], src["config_text"]), indent=2, ensure_ascii=False
        ),
        facts=[(label, pageview.fact(src[name])) for name, label in fields.PAGE_LABELS],
        fresh=_freshness(now),
    )
    return _html(body)
