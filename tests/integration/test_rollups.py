"""Latency rollups written by the daemon's result batch (the same statement as the status
UPDATE), read back by the API's percentiles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from healthd.core import rollups
from healthd.core.debounce import Observation, State
from healthd.store.codec import ResultRow
from healthd.store.facade import Store
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

T0 = 1_764_000_000.0 - 1_764_000_000.0 % 60 + 5  # 5 s into a minute


def test_batches_add_to_the_minute_bucket(db: psycopg.Connection[Any], db_url: str) -> None:
    for sid in ("a", "b"):
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', '{}')",
            (sid, sid),
        )
    # a: three successes in one minute (12, 40, 40 ms) and one failure; b: one success
    # in the next minute. Each flush is one batch, as the daemon writes them.
    batches = [
        [("a", "connected", 12.0, 0), ("b", "connected", 3.0, 61)],
        [("a", "connected", 40.0, 10)],
        [("a", "error", 2000.0, 20)],
        [("a", "connected", 40.0, 30)],
    ]

    async def go() -> None:
        store = Store(db_url, "n")
        for batch in batches:
            for sid, status, lat, dt in batch:
                obs = Observation(status, "" if status == "connected" else "HTTP 500", T0 + dt)
                store.add_result(ResultRow(sid, obs, lat, State(status="connected"), False))
            await store.flush()
        await store.close()

    asyncio.run(go())
    rows = db.execute(
        "SELECT source_id, date_part('epoch', bucket), count, failures, max_ms, hist"
        " FROM latency_rollups ORDER BY 1"
    ).fetchall()
    (a_id, a_bucket, a_count, a_fail, a_max, a_hist), (b_id, b_bucket, *_b) = rows
    assert (a_id, a_bucket, a_count, a_fail, a_max) == ("a", T0 - 5, 4, 1, 40.0)
    expected = [0] * rollups.SLOTS
    expected[rollups.slot(12.0)] += 1
    expected[rollups.slot(40.0)] += 2
    assert a_hist == expected  # the failure's 2 s is not a latency of the service
    assert (b_id, b_bucket) == ("b", T0 - 5 + 60)
    assert db.execute("SELECT latency_ms FROM data_sources WHERE id='a'").fetchone() == (40.0,)


def test_an_open_minute_is_written_once_it_closes_or_at_stop(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Results of the running minute are summed in memory: a flush writes the statuses
    but not yet their rollup; the flush at stop (everything=True) writes it."""
    import time

    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('c', 'c', 'http', '{}')"
    )

    def rollup() -> tuple[Any, ...] | None:
        return db.execute(
            "SELECT count, failures, max_ms FROM latency_rollups WHERE source_id='c'"
        ).fetchone()

    async def go() -> None:
        store = Store(db_url, "n")
        now = time.time()
        at = now - now % 60 + 1  # inside this minute
        if now - at > 50:  # too close to the minute's end for the test's assumptions
            at += 60
        for dt, lat in ((0.0, 7.0), (1.0, 30.0)):
            obs = Observation("connected", "", at + dt)
            store.add_result(ResultRow("c", obs, lat, State(status="connected"), False))
            await store.flush()
        assert db.execute("SELECT latency_ms FROM data_sources WHERE id='c'").fetchone() == (30.0,)
        assert rollup() is None
        await store.flush(everything=True)
        await store.close()

    asyncio.run(go())
    assert rollup() == (2, 0, 30.0)


def test_a_stopping_daemon_writes_its_open_minute(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Every probe of a real `healthd run` counts: the minute still open at SIGTERM is
    written by the last flush, and its count is the number of probes the target saw."""
    target = Target()
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', %s)",
        (Jsonb({"url": target.url}),),
    )
    daemon = DaemonProcess(db_url, tmp_path / "daemon.log", HEALTHD_INTERVAL="0.3")
    try:
        wait_for(lambda: target.count("ok") >= 4, what="a few probes")
    finally:
        assert daemon.stop() == 0
    probes = target.count("ok")
    (count,) = db.execute(
        "SELECT coalesce(sum(count), 0) FROM latency_rollups WHERE source_id = 'web'"
    ).fetchone() or (0,)
    assert count == probes
