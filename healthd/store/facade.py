"""The daemon's database side, put together: the outage buffers (buffers.py), the writer
thread (writer.py), the status and transition SQL (status.py), shard leases (leases.py)
and the webhook outbox (outbox.py).

When PostgreSQL is unreachable the buffers keep the newest result per source and every
event (bounded), the connection is retried with backoff, and everything is flushed when
it is back.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from healthd import fields
from healthd.debounce import Event
from healthd.errors import first_line
from healthd.selfmetrics import SelfMetrics
from healthd.store import leases, retention, status
from healthd.store.buffers import MAX_EVENTS, Buffers
from healthd.store.codec import ResultRow
from healthd.store.outbox import Outbox
from healthd.store.writer import Unavailable, Writer

log = logging.getLogger("healthd.store")

SOURCE_COLUMNS = ", ".join(fields.DAEMON)


class Store:
    """The buffers belong to the event loop's thread; only whole batches cross over to
    the writer thread."""

    def __init__(self, url: str, node_id: str, max_events: int = MAX_EVENTS) -> None:
        self.url = url
        self.node_id = node_id
        self.writer = Writer(url, status.SETUP)
        self.buffers = Buffers(max_events)
        self.outbox = Outbox(self.writer)
        self.conflicts = 0
        self.written_rows = 0
        self.metrics: SelfMetrics | None = None  # the daemon's counters, when it keeps them

    # -- what the daemon looks at ----------------------------------------------------
    @property
    def results(self) -> dict[str, ResultRow]:
        return self.buffers.results

    @property
    def events(self) -> deque[tuple[str, Event]]:
        return self.buffers.events

    @property
    def dropped_events(self) -> int:
        return self.buffers.dropped_events

    @property
    def down_since(self) -> float | None:
        return self.writer.down_since

    def backlog(self) -> tuple[int, int]:
        """(results, events) buffered and not yet written."""
        return len(self.buffers.results), len(self.buffers.events)

    async def run(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; raises Unavailable when the database is down."""
        return await self.writer.run(sql, params)

    async def close(self) -> None:
        await self.writer.close()

    # -- reads -------------------------------------------------------------------------
    async def load_sources(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        if ids is None:
            return await self.run(f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled")
        return await self.run(
            f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled AND id = ANY(%s)", (ids,)
        )

    async def source_versions(self) -> dict[str, datetime]:
        # config_changed_at, not updated_at: every status write moves updated_at
        rows = await self.run("SELECT id, config_changed_at FROM data_sources WHERE enabled")
        return {r["id"]: r["config_changed_at"] for r in rows}

    # -- buffered writes (event-loop thread) -------------------------------------------
    def add_result(self, row: ResultRow) -> None:
        self.buffers.add_result(row)

    def add_event(self, source_id: str, event: Event) -> None:
        self.buffers.add_event(source_id, event)

    async def flush(self) -> list[int]:
        """Write everything buffered in one transaction; return the new history ids."""
        if not self.buffers:
            return []
        results, events = self.buffers.take()
        started = time.perf_counter()
        try:
            ids = await self.writer.call(self._flush_sync, list(results.values()), events)
        except Unavailable:
            self.buffers.restore(results, events)
            return []
        if self.metrics is not None:
            self.metrics.write_batch.observe(time.perf_counter() - started)
        self.written_rows += len(results)
        return ids

    def _flush_sync(self, results: list[ResultRow], events: list[tuple[str, Event]]) -> list[int]:
        conn = self.writer.connection()
        try:
            with self.writer.outage_guard():
                ids, conflicts = status.write_batch(conn, results, events)
        except Unavailable:
            raise
        except psycopg.Error as exc:
            # not an outage but a statement the server refused: retrying would loop forever
            log.error(
                "dropping a batch of %d results and %d events the database refused: %s",
                len(results),
                len(events),
                first_line(exc),
            )
            return []
        self.conflicts += conflicts
        return ids

    # -- daemon bookkeeping ------------------------------------------------------------
    @property
    def outages(self) -> int:
        return self.writer.outages

    async def heartbeat(
        self,
        hostname: str,
        pid: int,
        sources: int,
        version: str,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        await self.run(
            leases.HEARTBEAT_SQL,
            (self.node_id, hostname, pid, sources, version, Jsonb(metrics)),
        )

    async def forget_node(self) -> None:
        """Leave: drop the heartbeat and hand every shard back."""
        await self.run(leases.FORGET_SQL, {"node": self.node_id})

    async def announce_leases(self) -> None:
        """Tell the other daemons to run a lease round now (this one joined)."""
        await self.run(leases.ANNOUNCE_SQL)

    async def lease_shards(
        self, total: int, ttl: float, live_within: float
    ) -> tuple[set[int], int]:
        """Renew this daemon's shard leases and move toward a fair share of the live
        daemons; return (the shards held, live daemons)."""
        return await self.writer.call(self._lease_sync, total, ttl, live_within)

    def _lease_sync(self, total: int, ttl: float, live_within: float) -> tuple[set[int], int]:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            return leases.lease_round(conn, self.node_id, total, ttl, live_within)

    # -- webhook outbox (kept under these names for webhooks.Sender) --------------------
    async def claim_deliveries(self, limit: int, lease_s: float) -> list[dict[str, Any]]:
        return await self.outbox.claim(limit, lease_s)

    async def delivery_done(self, outbox_id: int, status: int | None = None) -> None:
        await self.outbox.done(outbox_id, status)

    async def delivery_failed(
        self, outbox_id: int, error: str, retry_in: float | None, status: int | None = None
    ) -> None:
        await self.outbox.failed(outbox_id, error, retry_in, status)

    # -- retention -----------------------------------------------------------------------
    async def prune_batch(self, cut: datetime) -> retention.Pruned | None:
        """One small batch of pruning on the writer thread (a flush waits at most one
        batch); None when another process holds the pruning lock."""
        return await self.writer.call(self._prune_sync, cut)

    def _prune_sync(self, cut: datetime) -> retention.Pruned | None:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            return retention.prune_batch(conn, cut)
