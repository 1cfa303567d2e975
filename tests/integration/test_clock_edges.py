"""The edges of time and of locks: whose clock a decision trusts, a window the database
cannot evaluate, pruning under load, a source changed while no daemon probed it. Against
real PostgreSQL, real `healthd run` daemons (one under libfaketime where a clock is the
point), the real `healthd` command and statusapi under a real gunicorn."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from healthd.core.debounce import Event
from healthd.core.words import CONNECTED, ERROR, TRANSITION
from healthd.store import status
from healthd.store.codec import Pending
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow

# libfaketime (Debian's faketime/libfaketime, installed by .ci/run): a daemon whose clock
# runs ahead of the database's and of the other daemons'
FAKETIME_LIB = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
needs_faketime = pytest.mark.skipif(
    FAKETIME_LIB is None,
    reason="libfaketime is not installed (apt-get install faketime libfaketime)",
)


def ahead(offset: str) -> dict[str, str]:
    """The environment of a process whose clocks run ``offset`` (``+1h``) ahead."""
    return {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": offset}


def _source(db: psycopg.Connection[Any], sid: str, url: str, **cols: Any) -> None:
    names = ", ".join(["id", "name", "plugin", "config", *cols])
    marks = ", ".join(["%s"] * (4 + len(cols)))
    db.execute(
        f"INSERT INTO data_sources ({names}) VALUES ({marks})",
        (sid, sid, "http", json.dumps({"url": url}), *cols.values()),
    )


def _paths(target: Target) -> list[str]:
    with target.lock:
        return [r["path"] for r in target.requests]


# -- a source changed while no daemon probed it ----------------------------------------


def test_a_source_changed_while_no_daemon_ran_is_probed_at_once(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any, target: Target
) -> None:
    """Probed an hour's interval ago by a daemon now stopped, then changed with
    `healthd sources update`: the next daemon probes the new definition at once, not an
    hour after the old one's probe."""
    _source(db, "x", target.url + "old", interval_s=3600)
    d = DaemonProcess(db_url, tmp_path / "d1.log")
    try:
        wait_for(lambda: "/old" in _paths(target), what="the first daemon's probe")
        wait_for(
            lambda: db.execute(
                "SELECT last_tested_at IS NOT NULL FROM data_sources WHERE id = 'x'"
            ).fetchone()[0],
            what="its result written",
        )
    finally:
        d.stop()
    cfg = json.dumps({"url": target.url + "new"})
    r = healthd_cli("sources", "update", "x", "--config", cfg)
    assert r.returncode == 0, r.stderr
    d = DaemonProcess(db_url, tmp_path / "d2.log")
    try:
        started = time.monotonic()
        wait_for(lambda: "/new" in _paths(target), timeout=10, what="the changed source probed")
        assert time.monotonic() - started < 10
    finally:
        d.stop()


# -- pruning under load ------------------------------------------------------------------


def _flap_writer(db_url: str, sid: str, stop: threading.Event, written: list[int]) -> None:
    """The daemon's own transition write (healthd/store/status.py), as fast as it goes:
    the source flips between connected and error, one transaction per transition."""
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        for sql in status.SETUP:
            conn.execute(sql)
        conn.commit()
        cur, nxt = CONNECTED, ERROR
        while not stop.is_set():
            ev = Event(TRANSITION, cur, nxt, "flap", time.time())
            out = status.write_batch(conn, [], [Pending(sid, ev)])
            written[0] += len(out.ids)
            cur, nxt = nxt, cur


def test_the_daemon_prunes_while_transitions_are_written_fast(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """20,000 rows past retention and a writer recording transitions as fast as it can:
    the daemon's first pruning round removes them (it gave up at the first moment the
    writer held the history lock, which was the pruning lock too)."""
    old = 20_000
    for sid in ("old", "busy"):
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config, enabled, connection_status)"
            ' VALUES (%s, %s, \'tcp\', \'{"host": "127.0.0.1", "port": 9}\', false,'
            " 'connected')",
            (sid, sid),
        )
    db.execute(
        "INSERT INTO status_history (source_id, event, from_status, to_status, at)"
        " SELECT 'old', 'transition', 'connected', 'error',"
        " now() - interval '500 days' + g * interval '1 second' FROM generate_series(1, %s) g",
        (old,),
    )
    stop, written = threading.Event(), [0]
    writer = threading.Thread(target=_flap_writer, args=(db_url, "busy", stop, written))
    writer.start()
    try:
        wait_for(lambda: written[0] > 100, what="the writer under way")
        d = DaemonProcess(db_url, tmp_path / "d.log")
        try:
            started = time.monotonic()
            wait_for(
                lambda: (
                    db.execute(
                        "SELECT count(*) FROM status_history WHERE at < now() - interval '400 days'"
                    ).fetchone()[0]
                    <= 1
                ),  # the newest transition before the cut-off is kept
                timeout=25,
                what="the old rows pruned",
            )
            took = time.monotonic() - started
        finally:
            d.stop()
    finally:
        stop.set()
        writer.join(10)
    rate = written[0] / (time.monotonic() - started)
    assert rate > 50, f"the writer wrote only {rate:.0f} transitions/s"
    assert took < 25


# -- whose clock places a probe --------------------------------------------------------


def _status(db: psycopg.Connection[Any], sid: str) -> str:
    return str(
        db.execute("SELECT connection_status FROM data_sources WHERE id = %s", (sid,)).fetchone()[0]
    )


@needs_faketime
def test_a_take_over_from_a_daemon_an_hour_ahead_probes_promptly(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, target: Target
) -> None:
    """The source's last probe was written by a daemon whose clock ran an hour ahead; the
    daemon that takes it over probes it within its interval, not an hour later, so the
    target's failure shows (it made no probe at all, and the status stayed connected)."""
    _source(db, "web", target.url, interval_s=1, fall=1)
    fast = DaemonProcess(db_url, tmp_path / "fast.log", **ahead("+1h"))
    slow: DaemonProcess | None = None
    try:
        wait_for(
            lambda: db.execute(
                "SELECT connection_status = 'connected' AND last_tested_at > now() + '50 min'"
                " FROM data_sources WHERE id = 'web'"
            ).fetchone()[0],
            what="the fast daemon's probes, an hour ahead",
        )
        slow = DaemonProcess(db_url, tmp_path / "slow.log")
        wait_for(lambda: "Health check service started" in slow.log(), what="the other daemon")
        assert fast.stop() == 0  # hands its shards back: the other takes them over
        target.set("fail")
        wait_for(lambda: target.count("fail") >= 1, timeout=8, what="a probe by the new holder")
        wait_for(lambda: _status(db, "web") == ERROR, timeout=8, what="the failure recorded")
    finally:
        fast.stop()
        if slow is not None:
            slow.stop()


def test_a_last_probe_in_the_future_by_sql_does_not_hold_a_source_back(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, target: Target
) -> None:
    """last_tested_at set a day ahead by SQL: the daemon still probes within the interval."""
    _source(db, "web", target.url, interval_s=1, fall=1, connection_status=CONNECTED)
    db.execute(
        "UPDATE data_sources SET last_tested_at = now() + interval '1 day',"
        " test_status = 'success', recent_results = 'sss' WHERE id = 'web'"
    )
    target.set("fail")
    d = DaemonProcess(db_url, tmp_path / "d.log")
    try:
        wait_for(lambda: target.count("fail") >= 1, timeout=8, what="a probe")
        wait_for(lambda: _status(db, "web") == ERROR, timeout=8, what="the failure recorded")
    finally:
        d.stop()


# -- a time zone the database does not know --------------------------------------------


def _get(base: str, path: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_window_in_a_zone_the_server_does_not_know_fails_only_itself(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, target: Target
) -> None:
    """A recurring window in a zone PostgreSQL does not know, written by SQL, beside a good
    one-off window: transitions are stored, the API answers 200, the good window still
    counts, the bad one is said once in the daemon's log and shown as not evaluable."""
    from tests.fix_procs import Gunicorn, invoke

    _source(db, "web", target.url, interval_s=0.2, rise=1, fall=1)
    _source(db, "api", target.url, interval_s=3600)
    bad = db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, every_time, tz, duration)"
        " VALUES (NULL, now() - interval '2 days', '00:00', 'Mars/Olympus', '23 hours')"
        " RETURNING id"
    ).fetchone()[0]
    db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, ends_at)"
        " VALUES ('{api}', now() - interval '1 hour', now() + interval '1 hour')"
    )
    target.set("alternate")
    d = DaemonProcess(db_url, tmp_path / "d.log")
    api = Gunicorn(db_url, tmp_path / "api.log")
    try:
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM status_history WHERE source_id = 'web'"
                ).fetchone()[0]
                >= 3
            ),
            timeout=15,
            what="transitions stored",
        )
        assert db.execute(
            "SELECT bool_or(maintenance) FROM status_history WHERE source_id = 'web'"
        ).fetchone() == (False,)
        for path in ("/api/v1/sources", "/status", "/api/v1/maintenance", "/api/v1/sources/web"):
            code, body = _get(api.base, path)
            assert code == 200, (path, body[:300])
        sources = {s["id"]: s for s in json.loads(_get(api.base, "/api/v1/sources")[1])["sources"]}
        assert sources["api"]["in_maintenance"] is True  # the good window still counts
        assert sources["web"]["in_maintenance"] is False
        windows = json.loads(_get(api.base, "/api/v1/maintenance")[1])
        assert [w["source_ids"] for w in windows["windows"]] == [["api"]]
        assert _get(api.base, "/api/v1/sources/web/uptime")[0] == 200
        said = [line for line in d.log().splitlines() if "Mars/Olympus" in line]
        assert len(said) == 1 and f"maintenance window {bad}" in said[0], said
    finally:
        api.stop()
        d.stop()
    r = invoke("maintenance", "list", "--json", env={"HEALTHD_DATABASE_URL": db_url})
    assert r.returncode == 0, r.stderr
    shown = {w["id"]: w for w in json.loads(r.stdout)["windows"]}
    assert shown[bad]["evaluable"] is False and shown[bad]["active"] is False
    r = invoke("maintenance", "list", env={"HEALTHD_DATABASE_URL": db_url})
    assert "not evaluable" in r.stdout


def test_maintenance_add_refuses_a_zone_the_server_does_not_know(
    db: psycopg.Connection[Any], healthd_cli: Any, tmp_path: Path
) -> None:
    """A zone Python knows (PYTHONTZPATH with one of its own) and PostgreSQL does not: one
    line naming the option, nothing stored."""
    zones = tmp_path / "zoneinfo"
    (zones / "Healthd").mkdir(parents=True)
    (zones / "Healthd" / "Test").write_bytes(Path("/usr/share/zoneinfo/UTC").read_bytes())
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('db', 'db', 'tcp', '{}')"
    )
    env = {"PYTHONTZPATH": f"{zones}{os.pathsep}/usr/share/zoneinfo"}
    for args, field in (
        (("--every", "daily 02:00", "--tz", "Healthd/Test"), "--tz"),
        (("--every", "sun 02:00 Healthd/Test"), "--every"),
    ):
        r = healthd_cli("maintenance", "add", "--source", "db", *args, "--for", "1h", env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert lines[0].endswith(
            f"{field}: time zone 'Healthd/Test' is not known to the database server"
        ), lines
    assert db.execute("SELECT count(*) FROM maintenance_windows").fetchone() == (0,)
    r = healthd_cli(
        "maintenance",
        "add",
        "--source",
        "db",
        "--every",
        "daily 02:00 Europe/Berlin",
        "--for",
        "1h",
    )
    assert r.returncode == 0, r.stderr


# -- what is kept, and what is inside a window, by the database's clock ----------------


@needs_faketime
def test_a_daemon_500_days_ahead_keeps_the_recent_history_and_rollups(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """The last month's 1,000 transitions and the last 17 h of rollups survive the pruning
    round of a daemon whose clock runs 500 days ahead; history 450 days old by the
    database's clock still goes (the newest transition before the cut-off is kept)."""
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config, enabled)"
        " VALUES ('web', 'web', 'tcp', '{\"host\": \"127.0.0.1\", \"port\": 9}', false)"
    )
    db.execute(
        "INSERT INTO status_history (source_id, event, from_status, to_status, at)"
        " SELECT 'web', 'transition', 'connected', 'error', now() - g * interval '43 minutes'"
        " FROM generate_series(1, 1000) g"
        " UNION ALL SELECT 'web', 'transition', 'error', 'connected',"
        " now() - interval '450 days' - g * interval '1 hour' FROM generate_series(1, 10) g"
    )
    db.execute(
        "INSERT INTO latency_rollups (source_id, bucket, count, hist)"
        " SELECT 'web', date_trunc('minute', now()) - g * interval '1 minute', 1, '{1}'"
        " FROM generate_series(1, 1020) g"
    )
    d = DaemonProcess(db_url, tmp_path / "d.log", **ahead("+500d"))
    try:
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM status_history WHERE at < now() - interval '400 days'"
                ).fetchone()[0]
                <= 1
            ),
            timeout=20,
            what="the daemon's pruning round",
        )
    finally:
        d.stop()
    recent = db.execute(
        "SELECT count(*) FROM status_history WHERE at > now() - interval '31 days'"
    ).fetchone()[0]
    rollups = db.execute("SELECT count(*) FROM latency_rollups").fetchone()[0]
    assert (recent, rollups) == (1000, 1020)


@needs_faketime
def test_a_daemon_an_hour_ahead_inside_an_open_window_records_maintenance(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, target: Target, healthd_cli: Any
) -> None:
    """A window the database (and the API) sees as open for the next 30 minutes; the
    daemon's clock is an hour ahead: its transition is marked maintenance and queues no
    webhook (it was recorded maintenance=false and a webhook queued)."""
    _source(db, "web", target.url, interval_s=0.2, rise=1, fall=1)
    db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, ends_at)"
        " VALUES ('{web}', now() - interval '10 minutes', now() + interval '30 minutes')"
    )
    assert healthd_cli("webhooks", "add", "http://127.0.0.1:9/hook").returncode == 0
    target.set("fail")
    d = DaemonProcess(db_url, tmp_path / "d.log", **ahead("+1h"))
    try:
        row = wait_for(
            lambda: db.execute(
                "SELECT maintenance, at < now() + interval '5 minutes' FROM status_history"
                " WHERE source_id = 'web' AND to_status = 'error'"
            ).fetchone(),
            what="the failure recorded",
        )
    finally:
        d.stop()
    assert row == (True, True)  # stamped and judged by the database's clock
    assert db.execute("SELECT count(*) FROM webhook_outbox").fetchone() == (0,)
