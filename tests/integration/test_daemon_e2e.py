"""The real `healthd run` against the throwaway PostgreSQL and real local targets."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.local import embedded
from tests.fix_db import add_http, status, transitions
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target, hanging_listener

pytestmark = pytest.mark.slow


def test_debounced_transitions_count_probes(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    add_http(db, "web", target.url)
    d = daemons()
    wait_for(lambda: status(db, "web") == "connected", what="first result adopted")
    target.set("fail")
    wait_for(lambda: status(db, "web") == "error", what="error after 3 failures")
    assert target.count("fail") == 3
    row = db.execute(
        "SELECT test_status, test_error_message FROM data_sources WHERE id='web'"
    ).fetchone()
    assert row == ("failed", "HTTP 500")
    hist = db.execute(
        "SELECT from_status, to_status, error_message, results FROM status_history"
        " WHERE source_id = 'web' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert hist[:3] == ("connected", "error", "HTTP 500") and len(hist[3]) == 3
    target.set("ok")
    wait_for(lambda: status(db, "web") == "connected", what="connected after 3 successes")
    assert target.count("ok") == 3
    assert transitions(db, "web") == [
        ("unknown", "connected"),
        ("connected", "error"),
        ("error", "connected"),
    ]
    assert d.stop() == 0
    log = d.log()
    # the original's start line exactly (after the log prefix), the detail on a line of its own
    messages = [line.split(" INFO ", 1)[-1] for line in log.splitlines()]
    assert (
        "Health check service started (1s interval, silent mode, DB sync enabled, debounce active)"
        in messages
    )
    assert "debounce: rise 3, fall 3; sources: 1; concurrency: 500" in messages
    assert "source web: connected -> error (HTTP 500)" in log and "Traceback" not in log
    assert "Health check: " in log


def test_alternating_results_never_flip_and_raise_flapping(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    add_http(db, "web", target.url)
    daemons()
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    target.set("alternate")
    wait_for(
        lambda: target.count("ok") + target.count("fail") >= 10,
        timeout=30,
        what="10 alternating probes",
    )
    assert transitions(db, "web") == [("unknown", "connected")]
    wait_for(
        lambda: db.execute("SELECT flapping FROM data_sources WHERE id='web'").fetchone()[0],
        timeout=10,
        what="flapping flag",
    )
    events = [
        r[0]
        for r in db.execute("SELECT event FROM status_history WHERE source_id='web' ORDER BY id")
    ]
    assert events == ["transition", "flapping_started"]


def test_restart_mid_streak_keeps_the_streak(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    add_http(db, "web", target.url)
    first = daemons()
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    target.set("fail")
    wait_for(
        lambda: (
            db.execute("SELECT pending_count FROM data_sources WHERE id='web'").fetchone()[0] >= 1
        ),
        what="a pending failure streak",
    )
    assert first.stop() == 0
    pending = db.execute(
        "SELECT connection_status, pending_status, pending_count FROM data_sources WHERE id='web'"
    ).fetchone()
    assert pending[0] == "connected" and pending[1] == "error"
    assert pending[2] == target.count("fail") < 3  # every probe made was written on stop
    daemons()
    wait_for(lambda: status(db, "web") == "error", what="error after the restart")
    assert target.count("fail") == 3  # the streak went on: 3 failures in all, not 3 more


def test_hanging_target_does_not_delay_others(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    with hanging_listener() as port:
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config, timeout_s) VALUES"
            " ('hang', 'hang', 'tcp', %s, 5)",
            (
                json.dumps(
                    {"host": "127.0.0.1", "port": port, "send": "PING\r\n", "expect": "+PONG"}
                ),
            ),
        )
        add_http(db, "web", target.url)
        daemons()
        wait_for(lambda: status(db, "web") == "connected", what="connected")
        start = target.count("ok")
        wait_for(
            lambda: target.count("ok") - start >= 4, timeout=6, what="4 more probes of web in ~4 s"
        )
        wait_for(lambda: status(db, "hang") == "error", timeout=15, what="hang marked error")
        msg = db.execute("SELECT test_error_message FROM data_sources WHERE id='hang'").fetchone()[
            0
        ]
        assert "+PONG" in msg


def test_broken_row_is_error_and_the_rest_runs(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('bad', 'bad', 'nope', '{}'),"
        " ('bad2', 'bad2', 'http', '{\"url\": 42}')"
    )
    add_http(db, "web", target.url)
    d = daemons()
    wait_for(
        lambda: (
            status(db, "web") == "connected"
            and status(db, "bad") == "error"
            and status(db, "bad2") == "error"
        ),
        what="broken rows marked error",
    )
    assert (
        "unknown plugin 'nope'"
        in db.execute("SELECT test_error_message FROM data_sources WHERE id='bad'").fetchone()[0]
    )
    assert (
        "config.url"
        in db.execute("SELECT test_error_message FROM data_sources WHERE id='bad2'").fetchone()[0]
    )
    assert d.stop() == 0 and "Traceback" not in d.log()


def test_sources_added_and_removed_are_picked_up(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    daemons()
    wait_for(
        lambda: db.execute("SELECT count(*) FROM daemon_nodes").fetchone()[0] == 1, what="heartbeat"
    )
    add_http(db, "late", target.url)
    wait_for(
        lambda: status(db, "late") == "connected",
        timeout=5,
        what="new source probed within seconds",
    )
    # a plain-SQL edit of the config (no updated_at in it) is picked up too
    db.execute(
        "UPDATE data_sources SET config = %s WHERE id = 'late'",
        (json.dumps({"url": target.url + "moved"}),),
    )
    wait_for(
        lambda: any(r["path"] == "/moved" for r in list(target.requests)),
        timeout=5,
        what="the changed config probed within seconds",
    )
    db.execute("UPDATE data_sources SET enabled = false WHERE id = 'late'")
    seen = target.count("ok")
    # a source added after the disable is probed only once the daemon has read both
    # changes; once it has been probed twice (an interval later), the disabled source
    # must have seen no more probes than the one that may have been in flight
    other = Target()
    try:
        add_http(db, "marker", other.url)
        wait_for(
            lambda: other.count("ok") >= 2,
            timeout=10,
            what="a source added after the disable probed twice",
        )
    finally:
        other.close()
    assert target.count("ok") <= seen + 1


def test_notify_socket_gets_ready_then_watchdog(db: psycopg.Connection[Any], daemons: Any) -> None:
    path = Path(tempfile.mkdtemp()) / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(15)
    try:
        d = daemons(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000")
        got: list[str] = []
        while "WATCHDOG=1" not in got:
            got.extend(sock.recv(4096).decode().splitlines())
        assert got.index("READY=1") < got.index("WATCHDOG=1")
        assert d.stop() == 0
    finally:
        sock.close()
        os.unlink(path)


def test_database_outage_keeps_the_transition(
    tmp_path: Path, target: Target, private_cluster: embedded.Cluster
) -> None:
    cluster = private_cluster
    url = cluster.url()
    with psycopg.connect(url, autocommit=True) as db:
        add_http(db, "web", target.url)
    d = DaemonProcess(url, tmp_path / "outage.log")
    try:
        with psycopg.connect(url, autocommit=True) as db:
            wait_for(lambda: status(db, "web") == "connected", what="connected")
        cluster.stop()
        target.set("fail")
        wait_for(lambda: target.count("fail") >= 4, timeout=10, what="failures during the outage")
        # the transition was decided while the writer knew the database to be down
        wait_for(
            lambda: "database unreachable" in d.log(),
            timeout=20,
            what="the daemon noticing the outage",
        )
        cluster.start()
        with psycopg.connect(url, autocommit=True) as db:
            wait_for(
                lambda: status(db, "web") == "error", timeout=40, what="the transition flushed"
            )
            assert transitions(db, "web") == [("unknown", "connected"), ("connected", "error")]
        assert d.stop() == 0
        log = d.log()
        assert "database unreachable" in log and "database reachable again" in log
        assert "Traceback" not in log
    finally:
        if d.proc.poll() is None:
            d.stop()
