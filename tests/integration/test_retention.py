"""Retention: history, rollups and finished deliveries older than the cut-off go; the
newest transition before it stays per source, so uptime over the kept window is exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.store import retention
from statusapi import create_app
from tests.fix_ops import add_source, one_line_error
from tests.fix_procs import DaemonProcess, wait_for

NOW = datetime.now(UTC)


def _history(db: psycopg.Connection[Any], sid: str, rows: list[tuple[int, str, str, str]]) -> None:
    """rows: (days ago, event, from, to)."""
    for days, event, frm, to in rows:
        db.execute(
            "INSERT INTO status_history (source_id, event, from_status, to_status, at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (sid, event, frm, to, NOW - timedelta(days=days)),
        )


def _seed(db: psycopg.Connection[Any]) -> None:
    add_source(db, "web", "http://127.0.0.1:9/")
    add_source(db, "old", "http://127.0.0.1:9/")
    _history(
        db,
        "web",
        [
            (500, "transition", "unknown", "connected"),
            (450, "transition", "connected", "error"),
            (430, "flapping_started", "error", "error"),
            (420, "transition", "error", "connected"),  # the newest before a 400-day cut
            (100, "transition", "connected", "disconnected"),
            (99, "transition", "disconnected", "connected"),
        ],
    )
    _history(
        db,
        "old",
        [(700, "transition", "unknown", "connected"), (600, "transition", "connected", "error")],
    )


def uptime(db: psycopg.Connection[Any], sid: str, start: datetime, end: datetime) -> float:
    """up / (up + down) over [start, end), from the transitions (docs/operations.md, Maintenance windows)."""
    rows = db.execute(
        "SELECT at, to_status FROM status_history WHERE source_id = %s AND event = 'transition'"
        " ORDER BY at",
        (sid,),
    ).fetchall()
    status, up, down, t = "unknown", 0.0, 0.0, start
    for at, to in rows:
        if at <= start:
            status = to
            continue
        if at >= end:
            break
        span = (at - t).total_seconds()
        up, down = (
            (up + span, down)
            if status == "connected"
            else (up, down + span * (status != "unknown"))
        )
        status, t = to, at
    span = (end - t).total_seconds()
    up, down = (
        (up + span, down) if status == "connected" else (up, down + span * (status != "unknown"))
    )
    return up / (up + down)


def _kept(db: psycopg.Connection[Any], sid: str) -> list[tuple[str, str, str]]:
    return db.execute(
        "SELECT event, from_status, to_status FROM status_history WHERE source_id = %s ORDER BY id",
        (sid,),
    ).fetchall()


def test_prune_keeps_the_newest_transition_before_the_cut(
    db: psycopg.Connection[Any], healthd_cli: Any
) -> None:
    _seed(db)
    cut = NOW - timedelta(days=400)
    before = {w: uptime(db, "web", NOW - timedelta(days=w), NOW) for w in (30, 90, 200, 400)}
    r = healthd_cli("prune")  # HEALTHD_HISTORY_DAYS: 400 by default
    assert r.returncode == 0, r.stderr
    assert "pruned 4 history rows" in r.stdout
    assert _kept(db, "web") == [
        ("transition", "error", "connected"),
        ("transition", "connected", "disconnected"),
        ("transition", "disconnected", "connected"),
    ]
    assert _kept(db, "old") == [("transition", "connected", "error")]
    after = {w: uptime(db, "web", NOW - timedelta(days=w), NOW) for w in (30, 90, 200, 400)}
    assert after == before and 0 < after[400] < 1
    assert uptime(db, "old", cut, NOW) == 0.0  # still known to be down all along
    # idempotent, and a shorter cut through the flag
    assert "pruned 0 history rows" in healthd_cli("prune").stdout
    r = healthd_cli("--history-days", "50", "prune")
    assert "pruned 2 history rows" in r.stdout, r.stdout
    assert _kept(db, "web") == [("transition", "disconnected", "connected")]
    r = healthd_cli("prune", "--older-than", "98d12h")
    assert "pruned 0 history rows" in r.stdout  # the day-99 row is the newest before it
    one_line_error(healthd_cli("prune", "--older-than", "a while"), "--older-than")
    one_line_error(healthd_cli("prune", env={"HEALTHD_HISTORY_DAYS": "0"}), "HEALTHD_HISTORY_DAYS")


def test_finished_deliveries_go_pending_ones_stay_with_their_history(
    db: psycopg.Connection[Any], healthd_cli: Any
) -> None:
    _seed(db)
    db.execute("INSERT INTO webhooks (url) VALUES ('http://127.0.0.1:9/h')")
    ids = [
        r[0]
        for r in db.execute("SELECT id FROM status_history WHERE source_id = 'web' ORDER BY id")
    ]
    old = NOW - timedelta(days=450)
    for hid, delivered in ((ids[0], True), (ids[1], False)):
        db.execute(
            "INSERT INTO webhook_outbox (webhook_id, history_id, event, payload, created_at,"
            " delivered_at) VALUES (1, %s, 'transition', '{}', %s, %s)",
            (hid, old, old if delivered else None),
        )
    rollups = db.execute("SELECT to_regclass('latency_rollups') IS NOT NULL").fetchone()
    if rollups == (False,):  # the rollups table, as a database migrated with it has it
        db.execute(
            "CREATE TABLE latency_rollups (source_id varchar(50), bucket timestamptz,"
            " count integer NOT NULL DEFAULT 0, failures integer NOT NULL DEFAULT 0,"
            " max_ms real, hist integer[] NOT NULL, PRIMARY KEY (source_id, bucket))"
        )
    for days in (401, 399):
        db.execute(
            "INSERT INTO latency_rollups (source_id, bucket, count, hist) VALUES ('web', %s, 1, '{1}')",
            (NOW - timedelta(days=days),),
        )
    r = healthd_cli("prune")
    assert r.returncode == 0, r.stderr
    assert "1 rollup rows, 1 finished deliveries" in r.stdout
    # the pending delivery's history row (day 450) is kept, the delivered one's is not
    assert db.execute("SELECT history_id FROM webhook_outbox").fetchall() == [(ids[1],)]
    assert ("transition", "connected", "error") in _kept(db, "web")
    assert db.execute("SELECT count(*) FROM latency_rollups").fetchone() == (1,)


def test_one_pruner_at_a_time(db: psycopg.Connection[Any], db_url: str, healthd_cli: Any) -> None:
    _seed(db)
    with psycopg.connect(db_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (retention.LOCK_KEY,))
        r = healthd_cli("prune")
        assert r.returncode == 0 and "another process is pruning" in r.stdout
        assert "pruned 0 history rows" in r.stdout
        other.rollback()
    assert "pruned 4 history rows" in healthd_cli("prune").stdout


@pytest.mark.slow
def test_the_daemon_prunes(db: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    _seed(db)
    db.execute("UPDATE data_sources SET enabled = false")
    d = DaemonProcess(db_url, tmp_path / "d.log", HEALTHD_HISTORY_DAYS="30")
    try:
        wait_for(
            lambda: db.execute("SELECT count(*) FROM status_history").fetchone() == (2,),
            timeout=30,
            what="the daemon's pruning round",
        )
        assert _kept(db, "web") == [("transition", "disconnected", "connected")]
        wait_for(lambda: "pruned 6 rows older than 30 days" in d.log(), what="the log line")
    finally:
        d.stop()
    assert json.dumps(_kept(db, "old")) == '[["transition", "connected", "error"]]'


def test_uptime_route_is_unchanged_by_pruning(
    db: psycopg.Connection[Any], db_url: str, healthd_cli: Any
) -> None:
    """The API's own uptime figures (every window, every past day) read the same after a
    prune: the newest transition before the cut still says what the state was."""
    _seed(db)
    # the figures count no time before a source existed: let these exist all along
    db.execute("UPDATE data_sources SET created_at = now() - interval '800 days'")
    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    client = app.test_client()

    def figures(sid: str) -> tuple[dict[str, tuple[float, float, float]], list[Any]]:
        body = client.get(f"/api/v1/sources/{sid}/uptime").get_json()
        windows = {w: (f["up_s"], f["down_s"], f["unknown_s"]) for w, f in body["windows"].items()}
        return windows, body["daily"][:-1]  # today's figure grows while we look

    before = {sid: figures(sid) for sid in ("web", "old")}
    # a cut just before the 90-day window: what the window needs is the day-99 transition
    r = healthd_cli("prune", "--older-than", "95d")
    assert r.returncode == 0 and "pruned 6 history rows" in r.stdout, r.stdout
    after = {sid: figures(sid) for sid in ("web", "old")}
    for sid in ("web", "old"):
        assert after[sid][1] == before[sid][1], sid
        for w, (up, down, unknown) in before[sid][0].items():
            up2, down2, unknown2 = after[sid][0][w]
            # time passes between the two looks: it adds to the current (last) state only
            assert unknown2 == unknown == 0 and abs(up2 + down2 - up - down) < 30, (sid, w)
            assert (up2 > 0) == (up > 0) and (down2 > 0) == (down > 0), (sid, w)
    assert before["web"][0]["90d"][1] == 0 and before["old"][0]["90d"][0] == 0
    pool = app.extensions.get("healthd_pool")
    if pool is not None:
        pool.close()
