"""What the page shows, without a database: durations, the banner rule, the day bar, the
latency chart, badges."""

from __future__ import annotations

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


def test_day_bar() -> None:
    days = [
        {"date": f"2026-09-{d:02}", "uptime": u, "down_s": 60.0}
        for d, u in ((1, None), (2, 100.0), (3, 99.5), (4, 96.0), (5, 50.0))
    ]
    svg = str(pageview.bar(days))
    assert svg.count("data-day=") == 5 and svg.count("tabindex=0") == 5
    for cls in ("d0", "d4", "d3", "d2", "d1"):
        assert f"class={cls} " in svg
    assert "<title>2026-09-05 50.00%, down 1 min</title>" in svg


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
