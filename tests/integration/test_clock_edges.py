"""The edges of time and of locks: whose clock a decision trusts, a window the database
cannot evaluate, pruning under load, a source changed while no daemon probed it. Against
real PostgreSQL, real `healthd run` daemons (one under libfaketime where a clock is the
point), the real `healthd` command and statusapi under a real gunicorn."""

from __future__ import annotations

import json
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
