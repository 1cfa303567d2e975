"""Maintenance windows: the CLI, the API, PostgreSQL's idea of "inside a window", and end
to end: inside a window a failure is recorded and marked and pages nobody; after it the
next transition is sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.core import maintenance
from tests.fix_api import readonly_app
from tests.fix_ops import (
    FAST,
    add_source,
    api,
    one_line_error,
    receiver,
    status_of,
    transitions,
)
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target


@pytest.mark.slow
def test_failure_inside_a_window_is_recorded_marked_and_silent(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    target = Target()
    with receiver() as hook:
        add_source(db, "web", target.url)
        add_source(db, "other", target.url)
        assert healthd_cli("webhooks", "add", hook.url).returncode == 0
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: len(hook.posts) == 2, what="both first transitions sent")
            r = healthd_cli("maintenance", "add", "--source", "web", "--for", "1h", "--reason", "x")
            assert r.returncode == 0 and r.stdout.startswith("added maintenance window 1"), r.stderr
            with api(db_url) as client:
                web = client.get("/api/v1/sources/web").get_json()
                assert web["in_maintenance"] is True
                assert client.get("/api/v1/sources/other").get_json()["in_maintenance"] is False
                (window,) = client.get("/api/v1/maintenance").get_json()["windows"]
                assert (window["source_ids"], window["active"], window["reason"]) == (
                    ["web"],
                    True,
                    "x",
                )
            target.set("fail")
            wait_for(lambda: status_of(db, "web") == "error", what="web in error")
            wait_for(lambda: status_of(db, "other") == "error", what="other in error")
            # the window's failure: recorded, marked, nothing queued; other's: sent
            assert transitions(db, "web")[-1] == ("connected", "error", True, None, 0)
            wait_for(
                lambda: [b["source_id"] for b in hook.bodies() if b["to"] == "error"] == ["other"],
                what="other's failure sent",
            )
            with api(db_url) as client:
                (ev, *_) = client.get("/api/v1/sources/web/events").get_json()["events"]
                assert (ev["to"], ev["maintenance"]) == ("error", True)
            # the window ends (removed); the next transition pages again
            assert healthd_cli("maintenance", "remove", "1").returncode == 0
            target.set("ok")
            wait_for(
                lambda: any(
                    b["source_id"] == "web" and b["to"] == "connected" and b["from"] == "error"
                    for b in hook.bodies()
                ),
                what="web's recovery after the window sent",
            )
            assert transitions(db, "web")[-1] == ("error", "connected", False, None, 1)
            assert not any(b["source_id"] == "web" and b["to"] == "error" for b in hook.bodies())
        finally:
            d.stop()
            target.close()


def test_list_and_the_database_agree_on_recurring_windows(
    db: psycopg.Connection[Any], healthd_cli: Any
) -> None:
    add_source(db, "web", "http://127.0.0.1:9/")
    r = healthd_cli("maintenance", "add", "--all", "--every", "sun 02:00", "--for", "1h")
    assert r.returncode == 0 and "every sun 02:00 UTC for 1h" in r.stdout, r.stderr
    r = healthd_cli(
        "maintenance",
        "add",
        "--source",
        "web",
        "--every",
        "daily 12:00 Europe/Berlin",
        "--for",
        "30m",
    )
    assert r.returncode == 0, r.stderr  # Berlin's noon never meets Sunday 02:00 UTC
    listed = json.loads(healthd_cli("maintenance", "list", "--json").stdout)["windows"]
    assert listed[0]["every"] == {"day": "sun", "time": "02:00", "tz": "UTC", "duration_s": 3600.0}
    # PostgreSQL's occurrence function against the Python expansion, over a month
    rows = db.execute("SELECT id FROM maintenance_windows ORDER BY id").fetchall()
    from healthd.store import catalog

    stored = {w["id"]: catalog.window_of(w) for w in catalog.list_maintenance(db.info.dsn)}
    base = datetime(2027, 3, 15, tzinfo=UTC)  # across the spring DST change in Berlin
    for (wid,) in rows:
        for hours in range(0, 24 * 30, 7):
            at = base + timedelta(hours=hours, minutes=13)
            got = db.execute(
                "SELECT lower(r), upper(r) FROM (SELECT healthd_window_occurrence(w, %s) AS r"
                " FROM maintenance_windows w WHERE id = %s) x",
                (at, wid),
            ).fetchone()
            expected = next(maintenance.occurrences(stored[wid], at, at + timedelta(days=8)))
            assert got == expected, (wid, at)


def test_bad_windows_are_one_line_and_change_nothing(db: psycopg.Connection[Any], cli: Any) -> None:
    add_source(db, "web", "http://127.0.0.1:9/")
    add_source(db, "api", "http://127.0.0.1:9/")
    ok = cli("maintenance", "add", "--source", "web", "--start", "now", "--for", "2h")
    assert ok.returncode == 0, ok.stderr
    weekly = cli("maintenance", "add", "--source", "api", "--every", "sun 02:00", "--for", "1h")
    assert weekly.returncode == 0, weekly.stderr
    soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    cases = [
        (("--source", "web", "--start", soon, "--for", "1h"), "window: overlaps window 1"),
        (("--all", "--for", "10m"), "overlaps window 1"),
        (("--source", "api", "--every", "sun 02:30", "--for", "1h"), "overlaps window 2"),
        (
            ("--source", "web", "--start", "2030-01-02T00:00", "--end", "2030-01-01T00:00"),
            "--end: 2030-01-01T00:00:00Z is not after --start",
        ),
        (("--source", "nope", "--for", "1h"), "--source: no source with id 'nope'"),
        (("--for", "1h"), "--source: give one or more --source ID, or --all"),
        (("--source", "api", "--for", "soon"), "--for: must be a duration"),
        (("--source", "api", "--every", "sun 02:00", "--for", "8d"), "shorter than the recurrence"),
        (("--source", "api", "--every", "sun 05:00", "--for", "1h", "--tz", "Mars/Base"), "--tz"),
    ]
    before = db.execute("SELECT count(*) FROM maintenance_windows").fetchone()
    for args, needle in cases:
        one_line_error(cli("maintenance", "add", *args), needle)
    assert db.execute("SELECT count(*) FROM maintenance_windows").fetchone() == before
    one_line_error(cli("maintenance", "remove", "99"), "no maintenance window with id 99")


def test_spans_for_uptime(db: psycopg.Connection[Any], db_url: str, healthd_cli: Any) -> None:
    """What uptime counts apart: every occurrence overlapping a range, clipped to it."""
    from statusapi.data import queries

    add_source(db, "web", "http://127.0.0.1:9/")
    add_source(db, "api", "http://127.0.0.1:9/")
    start = datetime.now(UTC) - timedelta(days=1)  # a window may start in the past
    r = healthd_cli(
        "maintenance", "add", "--source", "web", "--start", start.isoformat(), "--every",
        "daily 03:00", "--for", "1h",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lo = start.timestamp()
    hi = lo + 10 * 86400 + 1800
    with readonly_app(db_url) as app, app.app_context():
        spans = queries.maintenance_spans("web", lo, hi)
        assert queries.maintenance_spans("api", lo, hi) == []
    window = catalog_window(db_url)
    expected = [
        (max(s.timestamp(), lo), min(e.timestamp(), hi))
        for s, e in maintenance.occurrences(
            window, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
        )
    ]
    rounded = [(round(s), round(e)) for s, e in spans]
    assert len(spans) in (10, 11) and rounded == [(round(s), round(e)) for s, e in expected]
    assert all(e - s <= 3600 for s, e in spans)


def catalog_window(db_url: str) -> maintenance.Window:
    from healthd.store import catalog

    (row,) = catalog.list_maintenance(db_url)
    return catalog.window_of(row)
