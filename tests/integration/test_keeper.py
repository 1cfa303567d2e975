"""The lease keeper (healthd/store/keeper.py): renews a daemon's shard leases from its own
thread and connection while the event loop turns, even late; lets them go when the loop is
hung; and never waits on a flush that holds a lease row (the fence's share lock)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from healthd.store.keeper import LeaseKeeper, may_renew

NODE = "node-a"
TTL = 15.0


def test_the_rule_renews_while_loop_and_writer_work_late_but_not_once_either_is_stuck() -> None:
    assert may_renew(100.0, 99.5, 30.0)
    assert may_renew(100.0, 75.0, 30.0)  # 25 s behind: overloaded, keeps its shards
    assert not may_renew(100.0, 69.0, 30.0)  # silent for 31 s: hung, lets them go
    assert may_renew(100.0, 99.5, 30.0, wrote_at=80.0)  # writes land, if late
    assert not may_renew(100.0, 99.5, 30.0, wrote_at=69.0)  # none landed for 31 s: stuck


def hold(db: psycopg.Connection[Any], shards: range, seconds: float) -> None:
    db.execute(
        "INSERT INTO daemon_nodes (node_id, hostname, pid, sources, version)"
        " VALUES (%s, 'h', 1, 0, 'x') ON CONFLICT DO NOTHING",
        (NODE,),
    )
    db.execute(
        "UPDATE shard_leases SET node_id = %s, expires_at = now() + make_interval(secs => %s)"
        " WHERE shard = ANY(%s)",
        (NODE, seconds, list(shards)),
    )


def left(db: psycopg.Connection[Any]) -> dict[int, float]:
    """Seconds left on each of NODE's leases."""
    rows = db.execute(
        "SELECT shard, extract(epoch FROM expires_at - now())::float FROM shard_leases"
        " WHERE node_id = %s",
        (NODE,),
    ).fetchall()
    return {shard: secs for shard, secs in rows}


def keeper(db_url: str, turned_at: list[float]) -> LeaseKeeper:
    return LeaseKeeper(db_url, NODE, TTL, 60.0, 30.0, lambda: turned_at[0], {})


def test_keeper_renews_only_what_is_held_and_only_while_the_loop_turns(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    hold(db, range(0, 8), 2.0)
    db.execute(
        "UPDATE shard_leases SET node_id = 'other', expires_at = now() + interval '2 seconds'"
        " WHERE shard = 9"
    )
    db.execute("UPDATE shard_leases SET node_id = %s, expires_at = now() WHERE shard = 10", (NODE,))
    turned = [time.monotonic() - 20.0]  # late, not hung
    k = keeper(db_url, turned)
    try:
        assert k.renew_once() == list(range(8))
        secs = left(db)
        assert all(TTL - 2 < secs[s] <= TTL for s in range(8)), secs
        assert secs[10] <= 0  # expired: taking it again is the lease round's job
        assert db.execute(
            "SELECT expires_at - now() < interval '3 s' FROM shard_leases WHERE shard = 9"
        ).fetchone() == (True,)
        hold(db, range(0, 8), 2.0)
        turned[0] = time.monotonic() - 31.0  # hung
        assert k.renew_once() is None
        assert all(s <= 2.0 for s in left(db).values())
        # the loop turns, but none of the daemon's writes has landed for 31 s
        turned[0] = time.monotonic()
        k.wrote_at = lambda: time.monotonic() - 31.0
        assert k.renew_once() is None
        assert all(s <= 2.0 for s in left(db).values())
        k.wrote_at = time.monotonic
        assert k.renew_once() == list(range(8))
    finally:
        k.stop()


def test_keeper_passes_a_flush_holding_a_lease_row_and_renews_it_after_the_commit(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    hold(db, range(0, 4), 2.0)
    k = keeper(db_url, [time.monotonic()])
    with psycopg.connect(db_url) as flush:
        # what a flush does until it commits: the fence share-locks its shards' lease rows
        flush.execute("SELECT shard FROM shard_leases WHERE shard = ANY(%s) FOR SHARE", ([1, 2],))
        threading.Timer(0.3, flush.commit).start()
        began = time.monotonic()
        try:
            assert k.renew_once() == [0, 1, 2, 3]
        finally:
            k.stop()
    # it waited for the lock only by retrying, never in a lock queue with the flush
    assert time.monotonic() - began >= 0.25
    assert all(s > TTL - 2 for s in left(db).values())
