"""What uptime costs the API when one source has a long, busy history: a source that flapped
every few seconds for 90 days (about 1.3 M transitions, seeded by SQL), served by a real
gunicorn. A page or a badge must cost the same whatever the history: the daily figures
come from the rollup the daemon keeps (migrations/0015_uptime_days.sql), not from reading
90 days of transitions into every worker."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_procs import DaemonProcess, Gunicorn, wait_for

pytestmark = pytest.mark.slow

EVERY_S = 6  # one transition every 6 s over 90 days and an hour: ~1.3 M rows
CONCURRENT = 16


def _seed(db: psycopg.Connection[Any]) -> int:
    # disabled: the daemon keeps its rollup of the history but does not probe it
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config, enabled, created_at)"
        " VALUES ('flap', 'Flap', 'tcp', '{\"host\": \"127.0.0.1\", \"port\": 9}', false,"
        " now() - interval '91 days')"
    )
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, at)"
        " SELECT 'flap', CASE WHEN i %% 2 = 0 THEN 'error' ELSE 'connected' END,"
        "  CASE WHEN i %% 2 = 0 THEN 'connected' ELSE 'error' END,"
        "  now() - interval '90 days 1 hour' + i * make_interval(secs => %s)"
        " FROM generate_series(0, (90 * 86400 + 3600) / %s - 2) i",
        (EVERY_S, EVERY_S),
    )
    db.execute("ANALYZE status_history")
    row = db.execute("SELECT count(*) FROM status_history").fetchone()
    assert row is not None
    return int(row[0])


def _workers(master: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(entry))
    return out


def _rss_mib(pids: list[int]) -> float:
    """The largest resident set of the workers, in MiB."""
    best = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                best = max(best, int(line.split()[1]) / 1024)
    return best


def _get(url: str, timeout: float = 30.0) -> tuple[int, float]:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - t0


def test_a_long_history_costs_a_page_and_a_badge_no_more(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    rows = _seed(db)
    assert rows > 1_000_000
    daemon = DaemonProcess(db_url, tmp_path / "daemon.log")
    try:
        # the daemon rolls the closed days up soon after it starts
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) >= 90 FROM uptime_days WHERE source_id = 'flap'"
                ).fetchone()
                or [False]
            )[0],
            timeout=60,
            what="the daemon's daily rollup of the history",
        )
    except psycopg.errors.UndefinedTable:
        pass  # a schema without the rollup: the API reads the history as it always did
    finally:
        daemon.stop()
    api = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=2)
    try:
        base = api.base
        wait_for(lambda: _get(f"{base}/healthz", 5)[0] == 200, what="gunicorn up")
        pids = _workers(api.proc.pid)
        assert len(pids) == 2
        rss0 = _rss_mib(pids)
        status, page_s = _get(f"{base}/status")
        assert status == 200
        status, badge_s = _get(f"{base}/badge/flap/uptime-30d.svg")
        assert status == 200
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(
                pool.map(
                    lambda _: _get(f"{base}/badge/flap/uptime-7d.svg?style=flat&n={_}"),
                    range(CONCURRENT),
                )
            )
        status, summary_s = _get(f"{base}/api/v1/summary")
        rss1 = _rss_mib(pids)
    finally:
        api.stop()
    statuses = sorted({s for s, _ in answers})
    slowest = max(t for _, t in answers)
    report = (
        f"{rows} transitions: first /status {page_s:.2f} s, a badge {badge_s:.2f} s,"
        f" {CONCURRENT} concurrent badges: statuses {statuses}, slowest {slowest:.2f} s;"
        f" summary {summary_s:.2f} s; worker RSS {rss0:.0f} -> {rss1:.0f} MiB"
    )
    sys.stderr.write(report + "\n")  # the figures, seen with -s
    assert page_s < 1.0, report
    assert badge_s < 0.5, report
    assert statuses == [200], report
    assert slowest < 2.0, report
    assert rss1 - rss0 < 100, report
