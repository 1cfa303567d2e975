"""Every SQL statement the daemon runs.

Results are buffered (the newest per source) and written in one UPDATE ... FROM unnest()
per batch; transitions go in the same transaction, each as a compare-and-swap on
``connection_status`` plus its history row and webhook outbox rows, so two writers cannot
both win and a committed transition is never left without its history.

When PostgreSQL is unreachable the buffers keep the newest result per source and every
event (bounded), the connection is retried with backoff, and everything is flushed when
it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from healthd.debounce import Event, Observation, State
from healthd.migrate import first_line

log = logging.getLogger(__name__)

MAX_EVENTS = 200_000  # events kept through an outage; past this the oldest are dropped (logged)

SOURCE_COLUMNS = (
    "id, name, plugin, config, enabled, interval_s, timeout_s, rise, fall, retry_interval_s, "
    "connection_status, pending_status, pending_count, pending_results, recent_results, flapping, "
    "percent_state_change, updated_at"
)


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


def state_from_row(row: dict[str, Any]) -> State:
    streak = tuple(obs_from_json(d) for d in (row.get("pending_results") or []) if isinstance(d, dict))
    return State(
        status=row["connection_status"], pending=row["pending_status"],
        count=row["pending_count"] if row["pending_status"] else 0, streak=streak,
        recent=row["recent_results"] or "", flapping=row["flapping"],
        percent=row["percent_state_change"] or 0.0,
    )


_RESULTS_SQL = """
UPDATE data_sources d SET
    last_tested_at = r.at, test_status = r.test_status, test_error_message = r.message,
    latency_ms = r.latency, pending_status = r.pending, pending_count = r.count,
    pending_results = r.streak, recent_results = r.recent, flapping = r.flapping,
    percent_state_change = r.percent, reconnect_count = d.reconnect_count + r.reconnected
FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::real[], %s::text[],
            %s::int[], %s::jsonb[], %s::text[], %s::bool[], %s::real[], %s::int[])
    AS r(id, at, test_status, message, latency, pending, count, streak, recent, flapping,
         percent, reconnected)
WHERE d.id = r.id
"""

_TRANSITION_SQL = """
WITH upd AS (
    UPDATE data_sources SET connection_status = %(to)s, status_changed_at = %(at)s
    WHERE id = %(id)s AND connection_status = %(from)s
    RETURNING id, name
), h AS (
    INSERT INTO status_history (source_id, event, from_status, to_status, at, error_message, results)
    SELECT id, %(event)s, %(from)s, %(to)s, %(at)s, %(message)s, %(results)s FROM upd
    RETURNING id, source_id, at
), o AS (
    INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)
    SELECT w.id, h.id, %(event)s, jsonb_build_object(
        'id', h.id, 'event', %(event)s, 'source_id', h.source_id, 'source_name', upd.name,
        'from', %(from)s, 'to', %(to)s, 'at', h.at, 'message', %(message)s)
    FROM h JOIN upd ON upd.id = h.source_id CROSS JOIN webhooks w
    WHERE w.enabled AND %(event)s = ANY (w.events)
)
SELECT id FROM h
"""

# Flapping events do not change the status: the same statement with a plain lookup.
_FLAP_SQL = _TRANSITION_SQL.replace(
    """UPDATE data_sources SET connection_status = %(to)s, status_changed_at = %(at)s
    WHERE id = %(id)s AND connection_status = %(from)s
    RETURNING id, name""",
    "SELECT id, name FROM data_sources WHERE id = %(id)s",
)


class Store:
    def __init__(self, url: str, node_id: str) -> None:
        self.url = url
        self.node_id = node_id
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self.results: dict[str, ResultRow] = {}
        self.events: deque[tuple[str, Event]] = deque()
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = 0.5
        self.dropped_events = 0
        self.conflicts = 0
        self.written_rows = 0
        # one connection, many jobs: statements from concurrent jobs must not interleave
        # inside each other's transactions
        self._lock = asyncio.Lock()

    # -- connection ----------------------------------------------------------------
    async def conn(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if time.monotonic() < self._retry_at:
            raise Unavailable()
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=5, row_factory=dict_row, application_name="healthd")
        except psycopg.OperationalError as exc:
            await self._failed(exc)
            raise Unavailable() from None
        if self.down_since is not None:
            log.warning("database reachable again after %.0f s; flushing %d results and %d events",
                        time.monotonic() - self.down_since, len(self.results), len(self.events))
            self.down_since = None
        self._backoff = 0.5
        return self._conn

    async def _failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("database unreachable (%s); probing goes on, results are kept until it is back",
                      first_line(exc))
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 30.0)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def run(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; raises Unavailable when the database is down."""
        async with self._lock:
            return await self._run(sql, params)

    async def _run(self, sql: str, params: Any) -> list[dict[str, Any]]:
        conn = await self.conn()
        try:
            async with conn.transaction():
                cur = await conn.execute(sql, params)
                return await cur.fetchall() if cur.description else []
        except psycopg.OperationalError as exc:
            await self._failed(exc)
            raise Unavailable() from None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- reads ---------------------------------------------------------------------
    async def load_sources(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        if ids is None:
            return await self.run(f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled")
        return await self.run(
            f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled AND id = ANY(%s)", (ids,))

    async def source_versions(self) -> dict[str, datetime]:
        rows = await self.run("SELECT id, updated_at FROM data_sources WHERE enabled")
        return {r["id"]: r["updated_at"] for r in rows}

    # -- buffered writes -----------------------------------------------------------
    def add_result(self, row: ResultRow) -> None:
        prev = self.results.get(row.source_id)
        if prev is not None and prev.reconnected and not row.reconnected:
            row.reconnected = True  # a reconnection is counted even if a newer result replaces it
        self.results[row.source_id] = row

    def add_event(self, source_id: str, event: Event) -> None:
        self.events.append((source_id, event))
        if len(self.events) > MAX_EVENTS:
            self.events.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1:
                log.error("event buffer full (%d): dropping the oldest events until the database is back", MAX_EVENTS)

    async def flush(self) -> list[int]:
        """Write everything buffered in one transaction; return the new history ids."""
        if not self.results and not self.events:
            return []
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> list[int]:
        results, self.results = self.results, {}
        events = list(self.events)
        self.events.clear()
        try:
            conn = await self.conn()
            async with conn.transaction():
                await self._write_results(conn, list(results.values()))
                ids = await self._write_events(conn, events)
                if ids:
                    await conn.execute("SELECT pg_notify('healthd_events', %s)", (str(max(ids)),))
        except (psycopg.OperationalError, Unavailable) as exc:
            if isinstance(exc, psycopg.OperationalError):
                await self._failed(exc)
            self._restore(results, events)
            return []
        except psycopg.Error as exc:
            # not an outage but a statement the server refused: retrying would loop forever
            log.error("dropping a batch of %d results and %d events the database refused: %s",
                      len(results), len(events), first_line(exc))
            return []
        self.written_rows += len(results)
        return ids

    def _restore(self, results: dict[str, ResultRow], events: list[tuple[str, Event]]) -> None:
        for sid, row in results.items():
            if sid not in self.results:
                self.results[sid] = row
            elif row.reconnected:
                self.results[sid].reconnected = True
        self.events.extendleft(reversed(events))
        while len(self.events) > MAX_EVENTS:
            self.events.popleft()
            self.dropped_events += 1

    async def _write_results(self, conn: psycopg.AsyncConnection[Any], rows: list[ResultRow]) -> None:
        if not rows:
            return
        cols: list[list[Any]] = [[] for _ in range(12)]
        for r in rows:
            s = r.state
            values = (r.source_id, ts(r.obs.at), "success" if r.obs.status == "connected" else "failed",
                      None if r.obs.status == "connected" else r.obs.message or None, r.latency_ms,
                      s.pending, s.count, json.dumps([obs_json(o) for o in s.streak]), s.recent,
                      s.flapping, s.percent, 1 if r.reconnected else 0)
            for col, v in zip(cols, values, strict=True):
                col.append(v)
        await conn.execute(_RESULTS_SQL, cols)

    async def _write_events(self, conn: psycopg.AsyncConnection[Any],
                            events: list[tuple[str, Event]]) -> list[int]:
        ids: list[int] = []
        for sid, ev in events:
            params = {"id": sid, "event": ev.kind, "from": ev.from_status, "to": ev.to_status,
                      "at": ts(ev.at), "message": ev.message or None,
                      "results": Jsonb([obs_json(o) for o in ev.results])}
            cur = await conn.execute(_TRANSITION_SQL if ev.kind == "transition" else _FLAP_SQL, params)
            row = await cur.fetchone()
            if row is None:
                # the row changed under us (removed, or another writer moved its status):
                # the compare-and-swap refused; the next resync reloads its state
                self.conflicts += 1
                log.warning("source %s: %s %s -> %s not written (status changed elsewhere or source removed)",
                            sid, ev.kind, ev.from_status, ev.to_status)
                continue
            ids.append(int(row["id"]))
        return ids

    # -- daemon bookkeeping --------------------------------------------------------
    async def heartbeat(self, hostname: str, pid: int, sources: int, version: str) -> None:
        await self.run(
            "INSERT INTO daemon_nodes (node_id, hostname, pid, sources, version) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), sources = EXCLUDED.sources",
            (self.node_id, hostname, pid, sources, version))

    async def forget_node(self) -> None:
        await self.run("DELETE FROM daemon_nodes WHERE node_id = %s", (self.node_id,))

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
            (lease_s, limit))

    async def delivery_done(self, outbox_id: int) -> None:
        await self.run("UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL WHERE id = %s",
                       (outbox_id,))

    async def delivery_failed(self, outbox_id: int, error: str, retry_in: float | None) -> None:
        if retry_in is None:
            await self.run("UPDATE webhook_outbox SET gave_up_at = now(), last_error = %s WHERE id = %s",
                           (error, outbox_id))
        else:
            await self.run(
                "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => %s),"
                " last_error = %s WHERE id = %s", (retry_in, error, outbox_id))
