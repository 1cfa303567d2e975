"""What the page shows, without a database: durations, the banner rule, the day bar, the
latency chart, badges."""

from __future__ import annotations

import re
from pathlib import Path

from statusapi.page import badge_svg as badge
from statusapi.page import pageview


def test_durations() -> None:
    assert pageview.duration(42) == "42 s"
    assert pageview.duration(3 * 3600 + 12 * 60 + 5) == "3 h 12 min"
    assert pageview.duration(2 * 86400 + 4 * 3600) == "2 d 4 h"
    assert pageview.duration(-5) == "0 s"


def test_banner_rule() -> None:
    def ov(**c: int) -> str:
        return pageview.overall(c)[0]

    assert ov(connected=5, unknown=2) == "operational"
    assert ov(connected=4, error=1) == "degraded"
    assert ov(connected=1, disconnected=1) == "degraded"  # half is not more than half
    assert ov(connected=1, disconnected=1, error=1) == "outage"
    assert pageview.overall({"error": 1})[1] == "Major outage: 1 of 1 source not connected"


def _days(*figures: tuple[float | None, float]) -> list[dict[str, object]]:
    return [
        {"date": f"2026-08-{i + 1:02}", "uptime": u, "down_s": down}
        for i, (u, down) in enumerate(figures)
    ]


def test_day_bar_is_one_stop_with_a_title_per_run() -> None:
    days = _days(
        (None, 0), (100.0, 0), (100.0, 0), (99.5, 60), (99.5, 60), (96.0, 60), (50.0, 43200)
    )
    svg = str(pageview.bar(days))
    assert svg.count("<rect x=") == 7 and svg.count("tabindex") == 1  # the bar's own
    assert "role=group tabindex=0 data-first=2026-08-01" in svg
    # equal days share one <title>: 5 runs for 7 days
    assert svg.count("<title>") == 5
    assert "<title>2026-08-02 – 2026-08-03: 100%</title><rect x=5 /><rect x=10 />" in svg
    assert "<title>2026-08-04 – 2026-08-05: 99.50%, down 1 min</title>" in svg
    assert "<title>2026-08-07: 50.00%, down 12 h</title>" in svg
    for cls in ("d0", "d4", "d3", "d2", "d1"):
        assert f"<g class={cls}>" in svg
    assert (
        'aria-label="Uptime per day, last 7 days: 2 days 100 %, 2 days ≥ 99 %, 1 day ≥ 95 %,'
        ' 1 day below 95 %, 1 day no data; lowest 2026-08-07, 50.00%, down 12 h"'
    ) in svg


def test_day_bar_runs_stop_where_a_narrow_screen_starts() -> None:
    svg = str(pageview.bar(_days(*[(100.0, 0)] * 90)))
    # the first 60 days carry "o" (status.css hides them below 600 px), the last 30 not
    assert svg.count("<title>") == 2 and svg.count("<rect x=") == 90
    assert '<g class="d4 o"><title>2026-08-01 – ' in svg and "<g class=d4><title>" in svg
    assert "1 day" not in svg and "lowest" not in svg


def test_type_labels() -> None:
    assert pageview.type_label("ai") == "AI"
    assert pageview.type_label("database") == "Database"
    assert pageview.type_label("ai-gateway") == "AI gateway"
    assert pageview.type_label("message_queue") == "Message queue"
    assert pageview.type_label("zz-bench") == "Zz bench"
    assert pageview.type_label("") == ""


def test_latency_chart_breaks_lines_at_gaps() -> None:
    def b(t: float, p: float | None) -> dict[str, object]:
        return {"start": t, "p50_ms": p, "p95_ms": p, "failures": 0, "count": 1}

    buckets = [b(0, 5), b(60, 6), b(120, 7), b(600, 8), b(660, 9), b(1200, 4)]
    svg = str(pageview.latency_chart(buckets, 0, 3600, "t", 60))
    assert svg.startswith('<svg data-chart="latency"')
    assert svg.count("<polyline") == 4  # two runs per series; the lone last point is a dot
    assert svg.count("<circle") == 12
    empty = str(pageview.latency_chart([], 0, 3600, "t", 60))
    assert "no probes recorded" in empty


def test_badges() -> None:
    svg = badge.svg("Web <shop>", "connected", badge.STATUS_COLOURS["connected"])
    assert "Web &lt;shop&gt;" in svg and svg.startswith("<svg")
    assert badge.uptime_text(None) == "no data" and badge.uptime_text(99.954) == "99.95%"
    assert badge.uptime_colour(100.0) != badge.uptime_colour(50.0)


def test_labels_are_cut_at_a_word_with_an_ellipsis() -> None:
    assert badge.shorten("Web shop") == "Web shop"
    assert badge.shorten("a\nb\t c") == "a b c"
    assert badge.shorten("alpha beta gamma delta", 12) == "alpha beta…"
    assert badge.shorten("alpha beta, gamma", 13) == "alpha beta…"  # no comma before it
    assert badge.shorten("alpha beta gamma", 11) == "alpha beta…"  # the cut falls on a space
    assert badge.shorten("x" * 50, 10) == "x" * 9 + "…"  # one long word: cut inside it
    assert len(badge.shorten("word " * 30)) <= badge.LABEL_MAX


def _linear(c: int) -> float:
    v = c / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _rgb(hex_colour: str) -> list[float]:
    h = hex_colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    return [_linear(int(h[i : i + 2], 16)) for i in (0, 2, 4)]


def _luminance(hex_colour: str) -> float:
    r, g, b = _rgb(hex_colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _contrast_with_white(hex_colour: str) -> float:
    return _contrast(hex_colour, "#fff")


# Machado, Oliveira and Fernandes (2009), severity 1.0, on linear RGB
_SIMULATED = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
}


def _lab(rgb: list[float]) -> tuple[float, float, float]:
    r, g, b = rgb
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _distance(a: str, b: str, vision: str) -> float:
    m = _SIMULATED[vision]

    def seen(c: str) -> list[float]:
        v = _rgb(c)
        return [min(1.0, max(0.0, sum(m[i][j] * v[j] for j in range(3)))) for i in range(3)]

    la, lb = _lab(seen(a)), _lab(seen(b))
    return float(sum((p - q) ** 2 for p, q in zip(la, lb, strict=True)) ** 0.5)


def test_badge_colours_keep_white_text_readable_and_failures_apart() -> None:
    colours = [*badge.STATUS_COLOURS.values(), badge.LABEL_GREY]
    colours += [b.badge for b in (*pageview.BANDS, pageview.NO_DATA)]
    for colour in colours:  # 11 px text: WCAG AA asks 4.5:1
        assert _contrast_with_white(colour) >= 4.5, colour
    down, err = badge.STATUS_COLOURS["disconnected"], badge.STATUS_COLOURS["error"]
    for vision in _SIMULATED:  # clearly apart (CIE76 > 20) for red-green blindness too
        assert _distance(down, err, vision) > 20, vision


def test_state_names_the_parents_that_are_down() -> None:
    row = {
        "connection_status": "error",
        "flapping": False,
        "enabled": True,
        "in_maintenance": False,
        "unreachable_via": ["db<1>", "dns"],
    }
    html = pageview.state_html(row)
    assert "data-unreachable-via>unreachable via db&lt;1&gt;, dns</span>" in html
    assert "unreachable via" not in pageview.state_html({**row, "unreachable_via": []})


CSS = (Path(pageview.__file__).parent / "static" / "status.css").read_text()


def _palettes() -> dict[str, dict[str, str]]:
    """The light and the dark scheme's custom properties, from the stylesheet."""
    light = CSS[: CSS.index("@media (prefers-color-scheme: dark)")]
    dark = CSS[CSS.index("@media (prefers-color-scheme: dark)") :].split("}", 1)[0]
    return {
        name: dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", block))
        for name, block in (("light", light), ("dark", dark))
    }


def test_the_page_palette_passes_aa_in_both_schemes() -> None:
    """What axe-core leaves to a person (text in the SVG chart, arrows between status
    words) is drawn in these colours: every text colour on both backgrounds, 4.5:1."""
    for scheme, p in _palettes().items():
        for text in ("fg", "muted", "ok", "down", "err", "unk", "maint"):
            for ground in ("bg", "soft"):
                ratio = _contrast(p[text], p[ground])
                assert ratio >= 4.5, (scheme, text, ground, round(ratio, 2))
    # the banner: white text (the 14 px sub-line too) on each of its colours
    banners = re.findall(r"\.banner(?:\.b-\w+)? \{[^}]*background: (#[0-9a-f]{6})", CSS)
    assert len(banners) == 4
    for colour in banners:
        assert _contrast_with_white(colour) >= 4.5, colour
    assert "opacity" not in CSS[CSS.index(".banner .fresh") :].split("}", 1)[0]
