"""The edges of time and of locks: whose clock a decision trusts, a window the database
cannot evaluate, pruning under load, a source changed while no daemon probed it. Against
real PostgreSQL, real `healthd run` daemons (one under libfaketime where a clock is the
point), the real `healthd` command and statusapi under a real gunicorn."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow


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
