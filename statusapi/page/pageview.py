"""What the status page shows, as plain values and small SVG fragments: durations in
words, the banner, the 90-day bar, the latency chart. Pure (no I/O, no clock)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from markupsafe import Markup

from healthd.core.words import CONNECTED, DOWN, SHOWN_ORDER, UNKNOWN

# the order the page shows them in: connected first, unknown last (status.js reads it so)
WORDS = SHOWN_ORDER


def duration(seconds: float) -> str:
    """3 h 12 min, 45 s, 2 d 4 h: the two largest units a person needs."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


# How a word of a source's `type` is spelled in a heading, where capitalising its first
# letter would be wrong. The one table of type labels: the group headings of /status, the
# detail page and the group view's title all read type_label().
TYPE_WORDS = {
    "ai": "AI",
    "api": "API",
    "cdn": "CDN",
    "ci": "CI",
    "db": "DB",
    "dns": "DNS",
    "ftp": "FTP",
    "grpc": "gRPC",
    "http": "HTTP",
    "https": "HTTPS",
    "iot": "IoT",
    "ldap": "LDAP",
    "llm": "LLM",
    "ml": "ML",
    "mqtt": "MQTT",
    "s3": "S3",
    "smtp": "SMTP",
    "sql": "SQL",
    "ssh": "SSH",
    "sso": "SSO",
    "tcp": "TCP",
    "tls": "TLS",
    "udp": "UDP",
    "ui": "UI",
    "vpn": "VPN",
}


def type_label(kind: str) -> str:
    """A `type` as a heading for people: "ai" -> "AI", "database" -> "Database",
    "ai-gateway" -> "AI gateway", "message_queue" -> "Message queue"."""
    words = kind.replace("_", " ").replace("-", " ").split()
    if not words:
        return kind
    spelled = [TYPE_WORDS.get(w.lower(), w) for w in words]
    first = spelled[0]
    if first == words[0]:  # not in the table: capitalise it
        first = first[:1].upper() + first[1:]
    return " ".join([first, *spelled[1:]])


def fact(value: Any) -> str:
    """A column's value as the detail page's "Details" list shows it, whatever its type."""
    if value is None or value == []:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def percent(pct: float | None) -> str:
    if pct is None:
        return "–"
    if pct >= 99.995 or pct == 0:
        return f"{pct:.0f} %"
    return f"{pct:.2f} %"


def overall(counts: Mapping[str, int], down_in_maintenance: int = 0) -> tuple[str, str]:
    """(data-overall, the banner's sentence) from counts of enabled sources per status
    (plus "maintenance": how many are inside a maintenance window). A source down inside
    its maintenance window is not an outage. The page's script applies the same rule
    (overall() in status.js)."""
    down = sum(counts.get(w, 0) for w in DOWN) - down_in_maintenance
    total = sum(counts.get(w, 0) for w in WORDS)
    noun = "source" if total == 1 else "sources"
    if down == 0:
        n = counts.get("maintenance", 0)
        if n:
            return "maintenance", f"Maintenance in progress: {n} of {total} {noun}"
        return "operational", "All systems operational"
    known = total - counts.get(UNKNOWN, 0) - down_in_maintenance
    if down * 2 > known:
        return "outage", f"Major outage: {down} of {total} {noun} not {CONNECTED}"
    return "degraded", f"Partial outage: {down} of {total} {noun} not {CONNECTED}"


@dataclass(frozen=True)
class Band:
    """One colour band of uptime: at least ``floor`` percent."""

    floor: float
    css: str  # the day cell's class (status.css colours it for light and dark)
    badge: str  # the uptime badge's colour (statusapi/page/badge_svg.py)
    legend: str  # how the detail page's legend names it


# highest first; the day bar, its legend and the uptime badge all read these
BANDS = (
    Band(100.0, "d4", "#2e7d32", "100 %"),
    Band(99.0, "d3", "#4f7a0a", "≥ 99 %"),
    Band(95.0, "d2", "#a04d00", "≥ 95 %"),
    Band(0.0, "d1", "#c62828", "below"),
)
NO_DATA = Band(math.nan, "d0", "#5f6368", "no data")


def band(pct: float | None) -> Band:
    if pct is None:
        return NO_DATA
    return next((b for b in BANDS if pct >= b.floor), BANDS[-1])


def day_class(pct: float | None) -> str:
    return band(pct).css


def day_figure(day: Mapping[str, Any]) -> str:
    """A day's figure as its tooltip says it: "99.50%, down 7 min", "no data"."""
    pct = day["uptime"]
    if pct is None:
        return "no data"
    down = day["down_s"]
    tail = f", down {duration(down)}" if down else ""
    return f"{percent(pct).replace(' ', '')}{tail}"


NARROW_DAYS = 30  # the days a bar shows below 600 px (status.css hides the rest)
DAY_STEP = 5  # a day's cell and its gap, in the bar's viewBox units


def _runs(daily: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str, str]]:
    """(first, last, figure, css) per run of consecutive days with the same figure; a run
    does not cross into the narrow screen's last NARROW_DAYS, so each run is shown or
    hidden whole."""
    runs: list[tuple[int, int, str, str]] = []
    cut = len(daily) - NARROW_DAYS
    for i, d in enumerate(daily):
        fig = day_figure(d)
        css = day_class(d["uptime"])
        if runs and runs[-1][2:] == (fig, css) and i != cut:
            runs[-1] = (runs[-1][0], i, fig, runs[-1][3])
        else:
            runs.append((i, i, fig, css))
    return runs


def bar_summary(daily: Sequence[Mapping[str, Any]]) -> str:
    """The bar's accessible name: how many days fell in each band, and the worst day."""
    counts: dict[Band, int] = {}
    for d in daily:
        counts[band(d["uptime"])] = counts.get(band(d["uptime"]), 0) + 1
    spoken = {BANDS[-1]: f"below {BANDS[-2].floor:g} %"}
    parts = [
        f"{counts[b]} {'day' if counts[b] == 1 else 'days'} {spoken.get(b, b.legend)}"
        for b in (*BANDS, NO_DATA)
        if counts.get(b)
    ]
    known = [d for d in daily if d["uptime"] is not None]
    worst = min(known, key=lambda d: d["uptime"], default=None)
    tail = ""
    if worst is not None and worst["uptime"] < BANDS[0].floor:
        tail = f"; lowest {worst['date']}, {day_figure(worst)}"
    return f"Uptime per day, last {len(daily)} days: {', '.join(parts)}{tail}"


def bar(daily: Sequence[Mapping[str, Any]]) -> Markup:
    """The 90-day bar: a cell per UTC day, coloured by its band, and one tooltip
    (<title>) per run of equal days, not per day. The bar is one tab stop named by its
    summary; status.js moves through the days inside it with the arrow keys (a roving
    tabindex) and names each from data-first and the cell's place. Cells carry only
    their x (the stylesheet sizes them): a long page carries thousands."""
    n = len(daily)
    if not n:
        return Markup("")
    old = n - NARROW_DAYS
    groups = []
    for first, last, fig, css in _runs(daily):
        when = daily[first]["date"]
        if last > first:
            when += f" – {daily[last]['date']}"
        cells = "".join(f"<rect x={i * DAY_STEP} />" for i in range(first, last + 1))
        cls = f'"{css} o"' if first < old else css
        groups.append(f"<g class={cls}><title>{when}: {fig}</title>{cells}</g>")
    return Markup(
        f'<svg class=bar viewBox="0 0 {n * DAY_STEP - 1} 24" preserveAspectRatio="xMaxYMid slice"'
        f" role=group tabindex=0 data-first={daily[0]['date']}"
        f' aria-label="{escape(bar_summary(daily))}">{"".join(groups)}</svg>'
    )


def _nice(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k not below v."""
    if v <= 0:
        return 1.0
    k = 1.0
    while k * 10 < v:
        k *= 10
    while k > v * 10:
        k /= 10
    for m in (1, 2, 2.5, 5, 10):
        if k * m >= v:
            return k * m
    return k * 10


def _clock(epoch: float, span: float) -> str:
    t = datetime.fromtimestamp(epoch, UTC)
    return t.strftime("%H:%M") if span <= 86400 else t.strftime("%d %b")


def _segments(buckets: Sequence[Mapping[str, Any]], step: float) -> list[list[Mapping[str, Any]]]:
    """Buckets split where one or more are missing: a line does not bridge a gap."""
    runs: list[list[Mapping[str, Any]]] = []
    for b in buckets:
        if runs and b["start"] - runs[-1][-1]["start"] <= step * 1.5:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def latency_chart(
    buckets: Sequence[Mapping[str, Any]], start: float, end: float, title: str, step: float
) -> Markup:
    """p50 and p95 lines over [start, end], failures as marks under the axis; axes in ms
    and UTC time. Drawn on the server: no script needed to see it."""
    w, h, left, right, top, bottom = 720, 250, 56, 12, 26, 46
    pw, ph = w - left - right, h - top - bottom
    span = max(end - start, 1.0)
    peak = max((b["p95_ms"] or 0 for b in buckets), default=0.0)
    ymax = _nice(peak * 1.1 if peak else 10.0)

    def x(t: float) -> float:
        return left + pw * (t - start) / span

    def y(v: float) -> float:
        return top + ph * (1 - min(v, ymax) / ymax)

    parts = [
        f'<svg data-chart="latency" class="chart" viewBox="0 0 {w} {h}" role="img"'
        f' aria-labelledby="chart-title chart-desc"><title id="chart-title">{escape(title)}</title>'
    ]
    n = len(buckets)
    fails = sum(b["failures"] for b in buckets)
    parts.append(
        f'<desc id="chart-desc">{n} points; highest p95 {peak:.0f} ms; {fails} failed probes</desc>'
    )
    for i in range(5):  # horizontal grid and y labels
        v = ymax * i / 4
        yy = y(v)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{w - right}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    for i in range(5):  # x labels
        t = start + span * i / 4
        anchor = ("start", "middle", "middle", "middle", "end")[i]
        parts.append(
            f'<text class="tick" x="{x(t):.1f}" y="{h - bottom + 16}" text-anchor="{anchor}">'
            f"{_clock(t, span)}</text>"
        )
    parts.append(
        f'<text class="unit" x="{left}" y="{top - 12}" text-anchor="middle">ms</text>'
        f'<text class="unit" x="{w - right}" y="{h - 6}" text-anchor="end">UTC</text>'
    )
    for key, cls in (("p95_ms", "p95"), ("p50_ms", "p50")):
        for run in _segments([b for b in buckets if b[key] is not None], step):
            pts = [(x(b["start"]), y(b[key])) for b in run]
            if len(pts) > 1:
                line = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
                parts.append(f'<polyline class="{cls}" points="{line}"/>')
            # a dot per point too: a lone bucket is no line at all
            parts.extend(
                f'<circle class="{cls}" cx="{px:.1f}" cy="{py:.1f}" r="2"/>' for px, py in pts
            )
    for b in buckets:
        if b["failures"]:
            parts.append(
                f'<rect class="fail" x="{x(b["start"]) - 1.5:.1f}" y="{top + ph + 3}"'
                f' width="3" height="6"><title>{b["failures"]} failed</title></rect>'
            )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{w - right}" y1="{top + ph}" y2="{top + ph}"/>'
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}"/>'
    )
    if not buckets:
        parts.append(
            f'<text class="empty" x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle">'
            "no probes recorded in this window</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- rows, rendered in Python: for 1,000 sources a Jinja macro and a url_for per row cost
# -- several times the rest of the page (P12)


def state_html(s: Mapping[str, Any]) -> str:
    """The status word (its shape comes from the CSS), since when, pending progress,
    the flapping mark and 'disabled'."""
    word = s["connection_status"]
    out = [f'<span class="st st-{word}" data-word>{word}</span>']
    if s.get("since"):
        out.append(
            f' <span class="since">for <time datetime="{s["status_changed_at"].isoformat()}"'
            f" data-since>{s['since']}</time></span>"
        )
    if s.get("pending"):
        out.append(f' <span class="pend" data-pending>{s["pending"]}</span>')
    hidden = "" if s["flapping"] else " hidden"
    out.append(f' <span class="flap" data-flapping{hidden}>flapping</span>')
    if not s["enabled"]:
        out.append(' <span class="off">disabled</span>')
    if s.get("in_maintenance"):
        out.append(' <span class="maint">maintenance</span>')
    if s.get("unreachable_via"):
        # the parents that are down now: this source's failure is theirs
        # (docs/operations.md, Dependencies)
        via = escape(", ".join(s["unreachable_via"]))
        out.append(f' <span class="via" data-unreachable-via>unreachable via {via}</span>')
    return "".join(out)


def uptimes_html(uptime: Mapping[str, str], keys: Sequence[str]) -> str:
    cells = "".join(
        f'<div><dt>{k}</dt><dd data-uptime-window="{k}">{uptime[k]}</dd></div>' for k in keys
    )
    return f'<dl class="up">{cells}</dl>'


def _maint(s: Mapping[str, Any]) -> str:
    return ' data-maintenance="true"' if s.get("in_maintenance") else ""


def row_html(s: Mapping[str, Any], href: str) -> str:
    name = escape(s["name"])
    enabled = "true" if s["enabled"] else "false"
    return (
        f'<li class="row" data-source-id="{escape(s["id"])}" data-status="{s["connection_status"]}"'
        f' data-enabled="{enabled}"{_maint(s)} data-name="{name}">\n'
        f'<div class="r1"><a class="name" href="{escape(href)}">{name}</a> {state_html(s)}</div>\n'
        f'<div class="r2"><span class="lat">latency: <b>{s["latency"]}</b></span>'
        f"{uptimes_html(s['uptime'], ('24h', '7d', '30d'))}</div>\n{s['bar']}\n</li>\n"
    )


def mini_row_html(s: Mapping[str, Any], href: str) -> str:
    """A row of a collapsed group (all connected, long page): name, status, 30-day uptime.
    The day bar and the rest are on the source's own page, one click away."""
    name = escape(s["name"])
    enabled = "true" if s["enabled"] else "false"
    return (
        f'<li class="row mini" data-source-id="{escape(s["id"])}"'
        f' data-status="{s["connection_status"]}" data-enabled="{enabled}"{_maint(s)}'
        f' data-name="{name}">'
        f'<a class="name" href="{escape(href)}">{name}</a> {state_html(s)}'
        f' <span class="upt">30d: <b data-uptime-window="30d">{s["uptime"]["30d"]}</b></span>'
        "</li>\n"
    )
