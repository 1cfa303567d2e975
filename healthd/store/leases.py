"""Shard leases and the daemon's heartbeat: how several daemons share the sources.

Each daemon renews the leases it holds and moves toward a fair share of the live daemons
(``rebalance``, pure): it takes free or expired shards while it holds fewer than its share
and hands back its highest ones while it holds more.

Every lease carries a generation, the fencing token: it moves on whenever the shard
changes holder, and every status write names the generation it was probed under (see
status.py), so a daemon that lost a shard while cut off cannot overwrite its new holder.
Re-taking one's own expired lease keeps the generation: nobody else wrote in between.
"""

from __future__ import annotations

import zlib
from typing import Any

import psycopg

SHARDS = 64  # sources are leased to daemons by shard: crc32(id) % SHARDS


def shard_of(source_id: str) -> int:
    return zlib.crc32(source_id.encode()) % SHARDS


def fair_share(total: int, live: int) -> int:
    """Shards per daemon: ``total`` over ``live`` daemons, rounded up (so every shard has
    a taker even when the division is uneven)."""
    return -(-total // max(1, live))


def rebalance(held: set[int], total: int, live: int) -> tuple[int, list[int]]:
    """(how many more shards to take, which held shards to hand back) to reach the fair
    share; the highest-numbered shards go back first."""
    fair = fair_share(total, live)
    if len(held) < fair:
        return fair - len(held), []
    return 0, sorted(held)[fair:]


# the heartbeat carries the daemon's own counters (healthd/core/selfmetrics.py)
HEARTBEAT_SQL = (
    "INSERT INTO daemon_nodes (node_id, hostname, pid, sources, version, metrics)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (node_id) DO UPDATE SET"
    " heartbeat_at = now(), sources = EXCLUDED.sources, metrics = EXCLUDED.metrics"
)
# leave (or, for a worker it saw die, the supervisor): drop the heartbeat, hand every shard
# back and wake the other daemons' lease rounds (they LISTEN healthd_leases), so they take
# the shards over at once instead of after the lease expires
FORGET_SQL = (
    "WITH released AS (UPDATE shard_leases SET node_id = NULL, expires_at = '-infinity'"
    " WHERE node_id = %(node)s), gone AS (DELETE FROM daemon_nodes WHERE node_id = %(node)s)"
    " SELECT pg_notify('healthd_leases', 'released')"
)
# a daemon that joined asks the others to hand over their surplus now
ANNOUNCE_SQL = "SELECT pg_notify('healthd_leases', 'joined')"


# The lease keeper (healthd/store/keeper.py) renews from a connection of its own, next to
# the writer's flushes. A flush share-locks its shards' lease rows to its commit (the
# fence, status.py): the keeper skips those rather than waiting for them (and tries them
# again a moment later), so neither ever waits on the other in a cycle. The heartbeat's
# row is touched first, before any lease row is locked, for the same reason (leaving,
# FORGET_SQL, locks both).
TOUCH_SQL = "UPDATE daemon_nodes SET heartbeat_at = now() WHERE node_id = %(node)s"
RENEW_SQL = (
    "UPDATE shard_leases SET expires_at = now() + make_interval(secs => %(ttl)s)"
    " WHERE node_id = %(node)s AND shard IN (SELECT shard FROM shard_leases"
    "  WHERE node_id = %(node)s AND expires_at > now() AND shard = ANY(%(shards)s)"
    "  FOR UPDATE SKIP LOCKED) RETURNING shard"
)
HELD_SQL = "SELECT shard FROM shard_leases WHERE node_id = %(node)s AND expires_at > now()"


def renew(
    conn: psycopg.Connection[Any], node: str, ttl: float, shards: list[int] | None = None
) -> tuple[list[int], list[int]]:
    """Renew this daemon's unexpired leases (of ``shards``, default all) and touch its
    heartbeat, in one transaction; return (renewed, held but skipped because a flush had
    them locked). Takes nothing and hands nothing back: that is the lease round's."""
    want = list(range(SHARDS)) if shards is None else shards
    p = {"node": node, "ttl": ttl, "shards": want}
    with conn.transaction():
        conn.execute(TOUCH_SQL, p)
        renewed = sorted(r[0] for r in conn.execute(RENEW_SQL, p).fetchall())
        held = {r[0] for r in conn.execute(HELD_SQL, p).fetchall()}
    return renewed, sorted(held.intersection(want) - set(renewed))


def release_node(url: str, node_id: str) -> None:
    """FORGET_SQL for a daemon known to be dead, from outside it (the supervisor, which
    reaped the worker: nothing can still be probing under that node id)."""
    with psycopg.connect(url, connect_timeout=5, application_name="healthd-supervisor") as conn:
        conn.execute(FORGET_SQL, {"node": node_id})


def lease_round(
    conn: psycopg.Connection[Any],
    node: str,
    total: int,
    ttl: float,
    live_within: float,
    at_least: int = 1,
) -> tuple[dict[int, int], int]:
    """Renew this daemon's leases and take free or expired shards up to its fair share, in
    one transaction; return (the shards held with their generations, live daemons). A
    surplus is kept (and renewed) for the caller to ``release`` once its last probes are
    written (handed back here, probes in flight or unflushed were dropped by the fence and
    the next holder probed those sources again at once): what ``rebalance`` says of the
    returned shards is the surplus. The live count is at least ``at_least`` (workers
    started together count each other before their first heartbeats land)."""
    p = {"node": node, "ttl": ttl, "live": live_within}
    with conn.transaction():
        held = {
            r["shard"]: r["generation"]
            for r in conn.execute(
                "UPDATE shard_leases SET expires_at = now() + make_interval(secs => %(ttl)s)"
                " WHERE node_id = %(node)s AND expires_at > now() RETURNING shard, generation",
                p,
            )
        }
        row = conn.execute(
            "SELECT count(*) AS n FROM daemon_nodes"
            " WHERE heartbeat_at > now() - make_interval(secs => %(live)s)"
            " OR node_id = %(node)s",
            p,
        ).fetchone()
        live = max(1, at_least, int(row["n"]) if row else 1)
        want, _ = rebalance(set(held), total, live)
        if want:
            # SET sees the old row: the generation moves on only when the holder changes
            held.update(
                (r["shard"], r["generation"])
                for r in conn.execute(
                    "UPDATE shard_leases SET node_id = %(node)s,"
                    " generation = generation + (node_id IS DISTINCT FROM %(node)s::varchar)::int,"
                    " expires_at = now() + make_interval(secs => %(ttl)s)"
                    " WHERE shard IN (SELECT shard FROM shard_leases"
                    "  WHERE node_id IS NULL OR expires_at <= now() ORDER BY shard"
                    "  LIMIT %(want)s FOR UPDATE SKIP LOCKED) RETURNING shard, generation",
                    {**p, "want": want},
                )
            )
    return held, live


def release(conn: psycopg.Connection[Any], node: str, shards: list[int]) -> None:
    """Hand these shards back (a surplus ``lease_round`` left to the caller)."""
    with conn.transaction():
        conn.execute(
            "UPDATE shard_leases SET node_id = NULL, expires_at = '-infinity'"
            " WHERE node_id = %(node)s AND shard = ANY(%(extra)s)",
            {"node": node, "extra": shards},
        )
        # the daemon short of its share takes them at once, not a round later
        conn.execute("SELECT pg_notify('healthd_leases', 'released')")
