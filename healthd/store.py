"""Every SQL statement the daemon runs.

Results are buffered (the newest per source) and written per batch by binary COPY into a
temp table and one UPDATE; transitions go in the same transaction, each as a compare-and-swap on
``connection_status`` plus its history row and webhook outbox rows, so two writers cannot
both win and a committed transition is never left without its history.

When PostgreSQL is unreachable the buffers keep the newest result per source and every
event (bounded), the connection is retried with backoff, and everything is flushed when
it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from healthd.debounce import Event, Observation, State
from healthd.migrate import first_line
from healthd.selfmetrics import SelfMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
ANALYZE_OVER = 200  # batches larger than this get planner statistics before the join
MAX_EVENTS = 200_000  # events kept through an outage; past this the oldest are dropped (logged)

SOURCE_COLUMNS = (
    "id, name, plugin, config, enabled, interval_s, timeout_s, rise, fall, retry_interval_s, "
    "connection_status, pending_status, pending_count, pending_results, recent_results, flapping, "
    "percent_state_change, updated_at, last_tested_at"
)


# Leave (or a supervisor, for a worker it saw die): drop the heartbeat, hand every shard
# back, and wake the other daemons' lease rounds.
FORGET_NODE = (
    "WITH released AS (UPDATE shard_leases SET node_id = NULL, expires_at = '-infinity'"
    " WHERE node_id = %(node)s), gone AS (DELETE FROM daemon_nodes WHERE node_id = %(node)s)"
    " SELECT pg_notify('healthd_leases', 'released')"
)


def release_node(url: str, node_id: str) -> None:
    """FORGET_NODE for a daemon known to be dead, from outside it (the supervisor, which
    reaped the worker: nothing can still be probing under that node id)."""
    with psycopg.connect(url, connect_timeout=5, application_name="healthd-supervisor") as conn:
        conn.execute(FORGET_NODE, {"node": node_id})


class Unavailable(Exception):
    """The database is down and the reconnect backoff has not elapsed."""


@dataclass
class ResultRow:
    source_id: str
    obs: Observation
    latency_ms: float | None
    state: State
    reconnected: bool


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def obs_json(o: Observation) -> dict[str, Any]:
    return {"status": o.status, "message": o.message, "at": ts(o.at).isoformat()}


def obs_from_json(d: dict[str, Any]) -> Observation:
    at = d.get("at")
    epoch = datetime.fromisoformat(at).timestamp() if isinstance(at, str) else 0.0
    return Observation(str(d.get("status", "error")), str(d.get("message", "")), epoch)


def _carry(newer: ResultRow, older: ResultRow | None) -> ResultRow:
    """The newer result replaces the older one, but a reconnection the older one reported
    is still counted."""
    if older is not None and older.reconnected:
        newer.reconnected = True
    return newer


def state_from_row(row: dict[str, Any]) -> State:
    streak = tuple(
        obs_from_json(d) for d in (row.get("pending_results") or []) if isinstance(d, dict)
    )
    return State(
        status=row["connection_status"],
        pending=row["pending_status"],
        count=row["pending_count"] if row["pending_status"] else 0,
        streak=streak,
        recent=row["recent_results"] or "",
        flapping=row["flapping"],
        percent=row["percent_state_change"] or 0.0,
    )


# A batch goes to a session temp table by binary COPY (psycopg's C dumpers; text
# parameters for a dozen 10,000-element arrays cost more than the UPDATE itself), then one
# UPDATE joins it by primary key (nested loops forced: the temp table has no statistics,
# and a hash join would scan all of data_sources for every batch).
_RESULTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_results (
    id text, at timestamptz, ts text, msg text, lat real, pst text, pc int, streak jsonb,
    rec text, flap bool, pct real, rc int
) ON COMMIT DELETE ROWS
"""
_RESULTS_TYPES = [
    "text",
    "timestamptz",
    "text",
    "text",
    "float4",
    "text",
    "int4",
    "jsonb",
    "text",
    "bool",
    "float4",
    "int4",
]
_RESULTS_SQL = """
UPDATE data_sources d SET
    last_tested_at = r.at, test_status = r.ts, test_error_message = r.msg,
    latency_ms = r.lat, pending_status = r.pst, pending_count = r.pc, pending_results = r.streak,
    recent_results = r.rec, flapping = r.flap, percent_state_change = r.pct,
    reconnect_count = d.reconnect_count + r.rc
FROM healthd_results r WHERE d.id = r.id
"""

# Events go the same way: binary COPY into a temp table, then one statement that applies
# every transition as a compare-and-swap (WHERE connection_status = from), writes a history
# row for each one that won and for each flapping event, and the webhook outbox rows for
# those. A source appears at most once per kind in one pass (see _waves).
_EVENTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_events (
    seq int, id text, event text, from_status text, to_status text, at timestamptz, msg text,
    results jsonb
) ON COMMIT DELETE ROWS
"""
_EVENTS_TYPES = ["int4", "text", "text", "text", "text", "timestamptz", "text", "jsonb"]
_EVENTS_SQL = """
WITH upd AS (
    UPDATE data_sources d SET connection_status = e.to_status, status_changed_at = e.at
    FROM healthd_events e
    WHERE e.event = 'transition' AND d.id = e.id AND d.connection_status = e.from_status
    RETURNING d.id, d.name
), won AS (
    SELECT e.*, coalesce(u.name, s.name) AS name FROM healthd_events e
    LEFT JOIN upd u ON e.event = 'transition' AND u.id = e.id
    LEFT JOIN data_sources s ON e.event <> 'transition' AND s.id = e.id
    WHERE u.id IS NOT NULL OR s.id IS NOT NULL
), h AS (
    INSERT INTO status_history
        (source_id, event, from_status, to_status, at, error_message, results)
    SELECT id, event, from_status, to_status, at, msg, results FROM won ORDER BY seq
    RETURNING id, source_id, event, at
), o AS (
    INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)
    SELECT w.id, h.id, h.event, jsonb_build_object(
        'id', h.id, 'event', h.event, 'source_id', h.source_id, 'source_name', won.name,
        'from', won.from_status, 'to', won.to_status, 'at', h.at, 'message', won.msg)
    FROM h JOIN won ON won.id = h.source_id AND won.event = h.event
    CROSS JOIN webhooks w WHERE w.enabled AND h.event = ANY (w.events)
)
SELECT id, source_id, event FROM h
"""


def _waves(events: list[tuple[str, Event]]) -> list[list[tuple[str, Event]]]:
    """Split events, in order, so no wave holds two events of one kind for one source
    (an outage can buffer unknown->connected and connected->error for the same source)."""
    waves: list[list[tuple[str, Event]]] = [[]]
    seen: set[tuple[str, str]] = set()
    for sid, ev in events:
        key = (sid, ev.kind)
        if key in seen:
            waves.append([])
            seen = set()
        seen.add(key)
        waves[-1].append((sid, ev))
    return waves


class Store:
    """The daemon's database side. Every statement runs on one writer thread with a
    blocking connection: a probe loop saturated with hundreds of probes would otherwise
    delay each of a flush's round trips by a full loop turn. The buffers belong to the
    event loop's thread; only whole batches cross over."""

    def __init__(self, url: str, node_id: str) -> None:
        self.url = url
        self.node_id = node_id
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthd-db")
        self.results: dict[str, ResultRow] = {}
        self.events: deque[tuple[str, Event]] = deque()
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = 0.5
        self.dropped_events = 0
        self.conflicts = 0
        self.written_rows = 0
        self.metrics: SelfMetrics | None = None  # the daemon's counters, when it keeps them

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- connection (writer thread) ------------------------------------------------
    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if time.monotonic() < self._retry_at:
            raise Unavailable()
        try:
            self._conn = psycopg.connect(
                self.url, connect_timeout=5, row_factory=dict_row, application_name="healthd"
            )
            self._conn.execute(_RESULTS_TEMP)
            self._conn.execute(_EVENTS_TEMP)
            self._conn.commit()
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None
        if self.down_since is not None:
            log.warning(
                "database reachable again after %.0f s; flushing the buffered results and events",
                time.monotonic() - self.down_since,
            )
            self.down_since = None
        self._backoff = 0.5
        return self._conn

    def _failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            if self.metrics is not None:
                self.metrics.db_outages += 1
            log.error(
                "database unreachable (%s); probing goes on, results are kept until it is back",
                first_line(exc),
            )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 30.0)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    def _run_sync(self, sql: str, params: Any) -> list[dict[str, Any]]:
        conn = self._connection()
        try:
            with conn.transaction():
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None

    async def run(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; raises Unavailable when the database is down."""
        return await self._in_thread(self._run_sync, sql, params)

    def _close_sync(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._in_thread(self._close_sync)
        self._pool.shutdown(wait=True)

    # -- reads ---------------------------------------------------------------------
    async def load_sources(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        if ids is None:
            return await self.run(f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled")
        return await self.run(
            f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled AND id = ANY(%s)", (ids,)
        )

    async def source_versions(self) -> dict[str, datetime]:
        rows = await self.run("SELECT id, updated_at FROM data_sources WHERE enabled")
        return {r["id"]: r["updated_at"] for r in rows}

    # -- buffered writes (buffers: event-loop thread only) ---------------------------
    def add_result(self, row: ResultRow) -> None:
        self.results[row.source_id] = _carry(row, self.results.get(row.source_id))

    def add_event(self, source_id: str, event: Event) -> None:
        self.events.append((source_id, event))
        self._trim_events()

    def _trim_events(self) -> None:
        while len(self.events) > MAX_EVENTS:
            self.events.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1:
                log.error(
                    "event buffer full (%d): dropping the oldest events until the database is back",
                    MAX_EVENTS,
                )

    async def flush(self) -> list[int]:
        """Write everything buffered in one transaction; return the new history ids."""
        if not self.results and not self.events:
            return []
        results, self.results = self.results, {}
        events = list(self.events)
        self.events.clear()
        started = time.perf_counter()
        try:
            ids = await self._in_thread(self._flush_sync, list(results.values()), events)
        except Unavailable:
            self._restore(results, events)
            return []
        if self.metrics is not None:
            self.metrics.write_batch.observe(time.perf_counter() - started)
        self.written_rows += len(results)
        return ids

    def _flush_sync(self, results: list[ResultRow], events: list[tuple[str, Event]]) -> list[int]:
        conn = self._connection()
        try:
            with conn.transaction():
                self._write_results(conn, results)
                ids = self._write_events(conn, events)
                if ids:
                    conn.execute("SELECT pg_notify('healthd_events', %s)", (str(max(ids)),))
            return ids
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None
        except psycopg.Error as exc:
            # not an outage but a statement the server refused: retrying would loop forever
            log.error(
                "dropping a batch of %d results and %d events the database refused: %s",
                len(results),
                len(events),
                first_line(exc),
            )
            return []

    def _restore(self, results: dict[str, ResultRow], events: list[tuple[str, Event]]) -> None:
        """Put an unwritten batch back under whatever was buffered since (which is newer)."""
        for sid, row in results.items():
            newer = self.results.get(sid)
            self.results[sid] = row if newer is None else _carry(newer, row)
        self.events.extendleft(reversed(events))
        self._trim_events()

    def _write_results(self, conn: psycopg.Connection[Any], rows: list[ResultRow]) -> None:
        if not rows:
            return
        with conn.cursor().copy("COPY healthd_results FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_RESULTS_TYPES)
            for r in rows:
                st, ok = r.state, r.obs.status == "connected"
                copy.write_row(
                    (
                        r.source_id,
                        ts(r.obs.at),
                        "success" if ok else "failed",
                        None if ok else (r.obs.message or None),
                        r.latency_ms,
                        st.pending,
                        st.count,
                        Jsonb([obs_json(o) for o in st.streak]),
                        st.recent,
                        st.flapping,
                        st.percent,
                        1 if r.reconnected else 0,
                    )
                )
        # the temp table has no statistics: left alone, the planner hash-joins and scans
        # all of data_sources; by primary key is right for any batch size
        conn.execute("SET LOCAL enable_hashjoin = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
        conn.execute(_RESULTS_SQL)
        conn.execute("SET LOCAL enable_hashjoin = on")
        conn.execute("SET LOCAL enable_mergejoin = on")

    def _write_events(
        self, conn: psycopg.Connection[Any], events: list[tuple[str, Event]]
    ) -> list[int]:
        ids: list[int] = []
        for wave in _waves(events) if events else []:
            conn.execute("DELETE FROM healthd_events")
            with conn.cursor().copy("COPY healthd_events FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_EVENTS_TYPES)
                for seq, (sid, ev) in enumerate(wave):
                    copy.write_row(
                        (
                            seq,
                            sid,
                            ev.kind,
                            ev.from_status,
                            ev.to_status,
                            ts(ev.at),
                            ev.message or None,
                            Jsonb([obs_json(o) for o in ev.results]),
                        )
                    )
            if len(wave) > ANALYZE_OVER:
                conn.execute("ANALYZE healthd_events")
            rows = conn.execute(_EVENTS_SQL).fetchall()
            ids.extend(int(r["id"]) for r in rows)
            self._report_conflicts(wave, {(r["source_id"], r["event"]) for r in rows})
        return ids

    def _report_conflicts(
        self, wave: list[tuple[str, Event]], written: set[tuple[str, str]]
    ) -> None:
        for sid, ev in wave:
            if (sid, ev.kind) not in written:
                # the row changed under us (removed, or another writer moved its status):
                # the compare-and-swap refused; the next resync reloads its state
                self.conflicts += 1
                log.warning(
                    "source %s: %s %s -> %s not written"
                    " (status changed elsewhere or source removed)",
                    sid,
                    ev.kind,
                    ev.from_status,
                    ev.to_status,
                )

    # -- daemon bookkeeping --------------------------------------------------------
    async def heartbeat(
        self,
        hostname: str,
        pid: int,
        sources: int,
        version: str,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        await self.run(
            "INSERT INTO daemon_nodes (node_id, hostname, pid, sources, version, metrics)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (node_id) DO UPDATE SET"
            " heartbeat_at = now(), sources = EXCLUDED.sources, metrics = EXCLUDED.metrics",
            (self.node_id, hostname, pid, sources, version, Jsonb(metrics)),
        )

    async def forget_node(self) -> None:
        """Leave: drop the heartbeat and hand every shard back, so another daemon takes
        them over at once (it hears NOTIFY healthd_leases) instead of after the lease expires."""
        await self.run(FORGET_NODE, {"node": self.node_id})

    async def announce_leases(self) -> None:
        """Tell the other daemons to run a lease round now (this one joined)."""
        await self.run("SELECT pg_notify('healthd_leases', 'joined')")

    async def lease_shards(
        self, total: int, ttl: float, live_within: float
    ) -> tuple[set[int], int]:
        """Renew this daemon's shard leases and move toward a fair share of the live
        daemons; return (the shards held, live daemons)."""
        return await self._in_thread(self._lease_sync, total, ttl, live_within)

    def _lease_sync(self, total: int, ttl: float, live_within: float) -> tuple[set[int], int]:
        conn = self._connection()
        p = {"node": self.node_id, "ttl": ttl, "live": live_within}
        try:
            with conn.transaction():
                held = {
                    r["shard"]
                    for r in conn.execute(
                        "UPDATE shard_leases"
                        " SET expires_at = now() + make_interval(secs => %(ttl)s)"
                        " WHERE node_id = %(node)s AND expires_at > now() RETURNING shard",
                        p,
                    )
                }
                row = conn.execute(
                    "SELECT count(*) AS n FROM daemon_nodes"
                    " WHERE heartbeat_at > now() - make_interval(secs => %(live)s)"
                    " OR node_id = %(node)s",
                    p,
                ).fetchone()
                live = max(1, int(row["n"]) if row else 1)
                fair = -(-total // live)
                if len(held) < fair:
                    held |= {
                        r["shard"]
                        for r in conn.execute(
                            "UPDATE shard_leases SET node_id = %(node)s,"
                            " expires_at = now() + make_interval(secs => %(ttl)s)"
                            " WHERE shard IN (SELECT shard FROM shard_leases"
                            "  WHERE node_id IS NULL OR expires_at <= now() ORDER BY shard"
                            "  LIMIT %(want)s FOR UPDATE SKIP LOCKED) RETURNING shard",
                            {**p, "want": fair - len(held)},
                        )
                    }
                elif len(held) > fair:
                    extra = sorted(held)[fair:]
                    conn.execute(
                        "UPDATE shard_leases SET node_id = NULL, expires_at = '-infinity'"
                        " WHERE node_id = %(node)s AND shard = ANY(%(extra)s)",
                        {**p, "extra": extra},
                    )
                    held -= set(extra)
                    # the daemon short of its share takes them at once, not a round later
                    conn.execute("SELECT pg_notify('healthd_leases', 'released')")
            return held, live
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None

    # -- webhook outbox ------------------------------------------------------------
    async def claim_deliveries(self, limit: int, lease_s: float) -> list[dict[str, Any]]:
        """Take due deliveries; the lease (next_attempt_at pushed ahead) keeps another
        daemon from sending the same one while this one is trying."""
        return await self.run(
            "UPDATE webhook_outbox o SET next_attempt_at = now() + make_interval(secs => %s),"
            " attempts = o.attempts + 1"
            " FROM webhooks w WHERE w.id = o.webhook_id AND o.id IN ("
            "  SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            "  AND next_attempt_at <= now() ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING o.id, o.delivery_id, o.event, o.payload, o.attempts, w.url, w.secret_ref",
            (lease_s, limit),
        )

    async def delivery_done(self, outbox_id: int) -> None:
        await self.run(
            "UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL WHERE id = %s",
            (outbox_id,),
        )

    async def delivery_failed(self, outbox_id: int, error: str, retry_in: float | None) -> None:
        if retry_in is None:
            await self.run(
                "UPDATE webhook_outbox SET gave_up_at = now(), last_error = %s WHERE id = %s",
                (error, outbox_id),
            )
        else:
            await self.run(
                "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => %s),"
                " last_error = %s WHERE id = %s",
                (retry_in, error, outbox_id),
            )
