"""The status page: GET / (redirect), /status and /status/<id>. HTML, server-rendered and
complete without JavaScript; static/status.js makes it live from the SSE stream."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
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
from healthd.core.words import CONNECTED, DOWN, ERROR, SUCCESS
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


@dataclass
class Tally:
    """The page's figures of every source (queries.page_tally): enabled sources per
    status (and "maintenance": how many are in a window), how many of the down ones are
    inside one, and each type's size and whether all of it is connected."""

    counts: dict[str, int]
    down_in_maintenance: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    all_up: dict[str, bool] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def _tally() -> Tally:
    t = Tally(dict.fromkeys((*pageview.WORDS, "maintenance"), 0))
    for r in queries.page_tally():
        kind, word, n = r["type"], r["connection_status"], r["n"]
        t.sizes[kind] = t.sizes.get(kind, 0) + n
        t.all_up[kind] = t.all_up.get(kind, True) and word == CONNECTED
        if r["enabled"]:
            t.counts[word] += n
            if r["in_maintenance"]:
                t.counts["maintenance"] += n
                t.down_in_maintenance += n if word in DOWN else 0
    return t


@dataclass
class Group:
    name: str  # the type
    size: int  # how many sources it has
    shown: list[dict[str, Any]]  # the rows this page renders
    collapsed: bool = False
    href: str | None = None  # the whole group, when some of it is not shown

    @property
    def hidden(self) -> int:
        return self.size - len(self.shown)


def _by_type(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in rows:
        out.setdefault(s["type"], []).append(s)
    return out


def _overview(t: Tally) -> list[Group]:
    """/status: every row on a short page; on a long one (more than COLLAPSE_OVER) a group
    whose sources are all connected starts collapsed with short rows, and each group shows
    at most its share of OVERVIEW_ROWS, the failing and pending first (queries.ATTENTION),
    read from the database without the rest."""
    cfg = current_app.config
    rise, fall = cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"]
    if t.total <= COLLAPSE_OVER:
        rows = _by_type(queries.page_sources(rise, fall))
        return [Group(name, len(m), m) for name, m in rows.items()]
    share = max(GROUP_ROWS_MIN, OVERVIEW_ROWS // max(len(t.sizes), 1))
    rows = _by_type(queries.page_ranked(rise, fall, 1, share))
    out = []
    for name, size in t.sizes.items():
        g = Group(name, size, rows.get(name, []), t.all_up[name])
        if g.hidden:
            g.href = url_for("page.status", group=name)
        out.append(g)
    return out


def _group_page(t: Tally, name: str, page: int) -> tuple[Group, dict[str, Any]]:
    """?group=<type>&page=N: one group, the failing and pending first, PAGE_ROWS a page."""
    size = t.sizes.get(name)
    if not size:
        raise ApiError(404, "not_found", f"no source of type {name!r}")
    pages = math.ceil(size / PAGE_ROWS)
    if page > pages:
        raise ApiError(404, "not_found", f"type {name!r} has {pages} page(s) of sources")
    cfg = current_app.config
    first = (page - 1) * PAGE_ROWS + 1
    shown = queries.page_ranked(
        cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"], first, first + PAGE_ROWS - 1, name
    )

    def link(n: int) -> str | None:
        if not 1 <= n <= pages:
            return None
        return url_for("page.status", group=name, page=n if n > 1 else None)

    pager = {"page": page, "pages": pages, "prev": link(page - 1), "next": link(page + 1)}
    pager["first"], pager["last"] = first, first + len(shown) - 1
    return Group(name, size, shown), pager


def _render_rows(groups: list[Group], now: float) -> list[list[Markup]]:
    """Each group's rows as HTML; a row is re-rendered only when something it shows has
    changed (the per-worker cache), and only the rows shown cost a timeline."""
    tls = timelines.of(current_app)
    tls.refresh(now)
    budget = [timelines.REFRESH_PER_REQUEST]
    figs = tls.figures([(s["id"], s["created_s"]) for g in groups for s in g.shown], now, budget)
    prefix = url_for("page.status") + "/"
    rendered = _rendered_rows(current_app)
    out = []
    for g in groups:
        rows = []
        for s in g.shown:
            fig = figs.get(s["id"]) or timelines.blank(now)
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
    group = params.text("group")
    page = params.integer("page", 1, 1, 1_000_000)
    if page is None or (page > 1 and group is None):
        raise params.bad("page", "pages are per group: give group=<type> too")
    head, now = queries.page_head()
    tally = _tally()
    pager = None
    if group is None:
        groups = _overview(tally)
    else:
        one, pager = _group_page(tally, group, page)
        groups = [one]
    rows = _render_rows(groups, now)
    overall, sentence = pageview.overall(tally.counts, tally.down_in_maintenance)
    body = render_template(
        "status.html",
        head=head,
        now=now,
        overall=overall,
        sentence=sentence,
        counts=tally.counts,
        down_in_maintenance=tally.down_in_maintenance,
        fresh=_freshness(now),
        groups=list(zip(groups, rows, strict=True)),
        group=group,
        pager=pager,
        # the page's script counts from its rows only when every source has one
        partial=sum(len(g.shown) for g in groups) < tally.total,
        recent=queries.recent_transitions(None, RECENT),
        total=tally.total,
    )
    return _html(body)


@bp.get("/status/<source_id>")
def detail(source_id: str) -> Response:
    cfg = current_app.config
    window = params.choice("window", figures.LATENCY_WINDOWS, "1h")
    head, now = queries.page_head()
    src = queries.page_source(source_id, cfg["DEFAULT_RISE"], cfg["DEFAULT_FALL"])
    found = figures.source_uptime(source_id)
    if src is None or found is None:
        raise ApiError(404, "not_found", f"no source with id {source_id!r}")
    windows, daily, now = found
    row = _row(src, None, now)
    uptime = {k: pageview.percent(v["uptime"]) for k, v in windows.items()}
    row["bar"] = pageview.bar(daily)
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
        # as text, so that autoescape shows & < > as they are (tojson writes \u0026)
        config=json.dumps(
            shapes.redacted_config(src["plugin"], src["config_text"]), indent=2, ensure_ascii=False
        ),
        facts=[(label, pageview.fact(src[name])) for name, label in fields.PAGE_LABELS],
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
