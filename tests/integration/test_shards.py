"""Several daemons on one database: each source probed by exactly one live daemon, and a
dead daemon's sources taken over."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow
N = 40


def shards_logged(d: DaemonProcess) -> int | None:
    """How many shards the daemon last said it probes."""
    said = re.findall(r"probing (\d+) of 64 shards", d.log())
    return int(said[-1]) if said else None


def per_path(target: Target, since: int = 0) -> dict[str, int]:
    with target.lock:
        out: dict[str, int] = {}
        for r in target.requests[since:]:
            out[r["path"]] = out.get(r["path"], 0) + 1
        return out


def min_gap(target: Target) -> float:
    """The shortest time between two probes of one source."""
    times: dict[str, list[float]] = {}
    with target.lock:
        for r in target.requests:
            times.setdefault(r["path"], []).append(r["at"])
    return min(b - a for ts in times.values() for a, b in zip(ts, ts[1:], strict=False))


def test_two_daemons_split_the_sources_and_take_over(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    target = Target()
    try:
        for i in range(N):
            db.execute(
                "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', %s)",
                (f"s{i}", f"s{i}", json.dumps({"url": f"{target.url}s{i}"})),
            )
        a = DaemonProcess(db_url, tmp_path / "a.log", HEALTHD_INTERVAL="2")
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM shard_leases WHERE node_id IS NOT NULL"
                ).fetchone()[0]
                == 64
            ),
            what="the first daemon holding every shard",
        )
        with target.lock:
            target.requests.clear()
        b = DaemonProcess(db_url, tmp_path / "b.log", HEALTHD_INTERVAL="2")
        try:

            def split() -> bool:
                rows = db.execute(
                    "SELECT node_id, count(*) FROM shard_leases WHERE expires_at > now()"
                    " GROUP BY node_id"
                ).fetchall()
                return sorted(n for _, n in rows) == [32, 32]

            wait_for(split, timeout=30, what="the shards split 32/32")
            # settled when each daemon says it probes its 32 (it logs that as it drops or
            # picks up sources); a probe still in flight then is one extra at most
            wait_for(
                lambda: shards_logged(a) == 32 and shards_logged(b) == 32,
                timeout=30,
                what="both daemons probing 32 shards",
            )
            # counted from the hand-over on: the old holder handed its surplus back only
            # once its last probes were written, so the new holder probes none of them early
            with target.lock:
                mark = len(target.requests)

            def three_rounds() -> dict[str, int] | None:
                counts = per_path(target, mark)
                return counts if len(counts) == N and min(counts.values()) >= 3 else None

            counts = wait_for(three_rounds, timeout=30, what="every source probed three times")
            # every source probed, none twice as often as its interval allows (no double probing)
            assert len(counts) == N, sorted(counts)
            assert max(counts.values()) <= 4, counts
            # and across the hand-over no source was probed again right away (1 s is the
            # retry interval of a source still rising: the shortest cadence it has)
            gap = min_gap(target)
            assert gap >= 0.8, gap
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            wait_for(
                lambda: (
                    db.execute(
                        "SELECT count(DISTINCT node_id) FROM shard_leases WHERE expires_at > now()"
                        " AND node_id IS NOT NULL"
                    ).fetchone()[0]
                    == 1
                    and db.execute(
                        "SELECT count(*) FROM shard_leases WHERE expires_at > now()"
                    ).fetchone()[0]
                    == 64
                ),
                timeout=40,
                what="the survivor taking over every shard",
            )
            with target.lock:
                target.requests.clear()
            wait_for(
                lambda: len(per_path(target)) == N,
                timeout=10,
                what="every source probed by the survivor",
            )
            assert b.stop() == 0
            assert "probing 64 of 64 shards" in b.log()
        finally:
            for d in (a, b):
                d.stop()  # also closes the log of the one killed above
    finally:
        target.close()
