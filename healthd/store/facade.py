"""The daemon's database side, put together: the outage buffers (buffers.py), the writer
thread (writer.py), the status and transition SQL (status.py), shard leases (leases.py)
and the webhook outbox (outbox.py).

When PostgreSQL is unreachable the buffers keep the newest result per source and every
event (bounded), the connection is retried with backoff, and everything is flushed when
it is back. A write that did not land as buffered (a lost compare-and-swap, a refused
row) leaves its source in ``take_reload`` for the daemon to read back from the table;
a write the fence dropped is counted (``stale_writes``) and logged by the lease round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from healthd.core import fields
from healthd.core.debounce import Event
from healthd.core.errors import first_line
from healthd.core.selfmetrics import SelfMetrics
from healthd.store import leases, refusals, retention, status, uptimedays
from healthd.store.buffers import MAX_EVENTS, Buffers
from healthd.store.codec import Pending, ResultRow
from healthd.store.outbox import Outbox
from healthd.store.rollbuf import Rollups, Taken
from healthd.store.writer import DB_TIMEOUT, MAX_BACKOFF, Unavailable, Writer

log = logging.getLogger("healthd.store")

SOURCE_COLUMNS = ", ".join(fields.DAEMON)
PAGE = 10_000  # sources read per call
# closed source-minutes written per batch (rollbuf.Rollups.take): a minute that closes on
# 50,000 sources goes out over five flushes, not in one that holds the writer for a second
ROLLUPS_PER_BATCH = 10_000


class Store:
    """The buffers belong to the event loop's thread; only whole batches cross over to
    the writer thread."""

    def __init__(
        self,
        url: str,
        node_id: str,
        max_events: int = MAX_EVENTS,
        timeout: float = DB_TIMEOUT,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.writer = Writer(url, status.SETUP, timeout, max_backoff)
        self.buffers = Buffers(max_events)
        self.rollups = Rollups()  # latency sums of minutes not yet closed (rollbuf.py)
        self.outbox = Outbox(self.writer)
        self.conflicts = 0
        self.written_rows = 0
        self.metrics: SelfMetrics | None = None  # the daemon's counters, when it keeps them
        self.stale_writes = 0  # dropped by the fence: this daemon no longer held the lease
        self._stale_unlogged = 0
        self.flushes_landed = 0
        self.reload_wanted: set[str] = set()
        self._refusal_logged: set[str] = set()
        self._flushing = asyncio.Lock()  # one batch in flight; stop waits for it (idle)

    # -- what the daemon looks at ----------------------------------------------------
    @property
    def results(self) -> dict[str, ResultRow]:
        return self.buffers.results

    @property
    def events(self) -> deque[Pending]:
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

    async def close(self, deadline: float = 5.0) -> None:
        await self.writer.close(deadline)

    # -- reads -------------------------------------------------------------------------
    async def load_sources(
        self, ids: list[str] | None = None, keep: Callable[[str], bool] | None = None
    ) -> list[dict[str, Any]]:
        """The enabled sources (all, or those of ``ids``) that ``keep`` accepts (default
        all), a page at a time: each page is its own short call, so 150,000 rows never
        make one call that a loaded machine cannot finish within its bound, and rows this
        daemon does not probe are dropped on the writer thread, not the event loop."""
        out: list[dict[str, Any]] = []
        if ids is not None:
            for i in range(0, len(ids), PAGE):
                out += await self.writer.call(self._page_sync, ids[i : i + PAGE], keep)
            return out
        after = ""
        while True:
            page, last = await self.writer.call(self._after_sync, after, keep)
            out += page
            if last is None:
                return out
            after = last

    def _page_sync(
        self, ids: list[str], keep: Callable[[str], bool] | None
    ) -> list[dict[str, Any]]:
        rows = self.writer.run_sync(
            f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled AND id = ANY(%s)", (ids,)
        )
        return [r for r in rows if keep is None or keep(r["id"])]

    def _after_sync(
        self, after: str, keep: Callable[[str], bool] | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows = self.writer.run_sync(
            f"SELECT {SOURCE_COLUMNS} FROM data_sources WHERE enabled AND id > %s"
            " ORDER BY id LIMIT %s",
            (after, PAGE),
        )
        last = rows[-1]["id"] if len(rows) == PAGE else None
        return [r for r in rows if keep is None or keep(r["id"])], last

    async def source_versions(
        self, keep: Callable[[str], bool] | None = None
    ) -> dict[str, datetime]:
        """Every enabled source's definition version that ``keep`` accepts (filtered on the
        writer thread)."""
        return await self.writer.call(self._versions_sync, keep)

    def _versions_sync(self, keep: Callable[[str], bool] | None) -> dict[str, datetime]:
        # config_changed_at, not updated_at: every status write moves updated_at
        rows = self.writer.run_sync(
            "SELECT id, config_changed_at FROM data_sources WHERE enabled", None
        )
        return {r["id"]: r["config_changed_at"] for r in rows if keep is None or keep(r["id"])}

    # -- buffered writes (event-loop thread) -------------------------------------------
    def add_result(self, row: ResultRow) -> None:
        self.buffers.add_result(row)
        self.rollups.add(row)

    def add_event(self, source_id: str, event: Event, gen: int | None = None) -> None:
        self.buffers.add_event(source_id, event, gen)

    async def flush(self, deadline: float | None = None, everything: bool = False) -> list[int]:
        """Write everything buffered (the rollups of closed minutes; of all minutes with
        ``everything``, as at stop); return the new history ids. Nothing taken is lost on
        the way: a batch that could not be written goes back under what was buffered
        since. Sources whose write did not land as buffered are kept for ``take_reload``."""
        async with self._flushing:
            ids = await self._flush(deadline, everything)
            # a minute probed under two lease generations goes in two takes
            for _ in range(3):  # bounded: a refusing database must not hold the stop
                if not (everything and self.rollups and self.down_since is None):
                    break
                ids += await self._flush(deadline, everything)
            return ids

    async def idle(self) -> None:
        """Return once no batch is in flight (an unwritten one is back in the buffers)."""
        async with self._flushing:
            pass

    async def _flush(self, deadline: float | None, everything: bool = False) -> list[int]:
        if everything:
            rolls = self.rollups.take(None)
        else:
            rolls = self.rollups.take(time.time(), ROLLUPS_PER_BATCH)
        if not self.buffers and not rolls:
            return []
        results, events = self.buffers.take()
        started = time.perf_counter()
        try:
            out = await self.writer.call(
                self._flush_sync, list(results.values()), events, rolls, deadline=deadline
            )
        except Unavailable:
            self.buffers.restore(results, events)
            self.rollups.restore(rolls)
            return []
        except BaseException:
            # a bug, or a cancellation at shutdown, must not lose the batch either
            self.buffers.restore(results, events)
            self.rollups.restore(rolls)
            raise
        self._account(out)
        if self.metrics is not None:
            self.metrics.write_batch.observe(time.perf_counter() - started)
        self.written_rows += len(results)
        self.flushes_landed += 1
        return out.ids

    def _flush_sync(
        self, results: list[ResultRow], events: list[Pending], rolls: Taken
    ) -> status.Outcome:
        conn = self.writer.connection()
        try:
            with self.writer.outage_guard():
                return status.write_batch(conn, results, events, rolls)
        except Unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - judged right below
            if not refusals.refused_for_content(exc):
                # the session or the server refuses (read-only, permissions, a timeout):
                # keep the batch, wait and retry like an outage
                self.writer.refused(exc)
                raise Unavailable() from None
            log.debug("batch refused (%s); writing it row by row", first_line(exc))
        conn = self.writer.connection()  # the guard discarded the one the error was on
        try:
            with self.writer.outage_guard():
                return refusals.write_one_by_one(conn, results, events, rolls)
        except Unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever refused the rows, the batch waits
            self.writer.refused(exc)
            raise Unavailable() from None

    def _account(self, out: status.Outcome) -> None:
        self.conflicts += len(out.conflicts)
        self.stale_writes += len(out.stale)
        self._stale_unlogged += len(out.stale)
        self.reload_wanted |= out.unlanded()
        for sid in (*out.replaced, *out.dropped):
            if sid in self._refusal_logged:
                continue
            self._refusal_logged.add(sid)
            log.error(
                "source %s: the database refused its row (%s); %s (logged once per source)",
                sid,
                out.reasons.get(sid, "?"),
                "written with its message replaced"
                if sid in out.replaced
                else "not written, its state is read back from the table",
            )

    def take_reload(self) -> list[str]:
        """Sources whose write did not land as buffered: their truth is in the table."""
        ids, self.reload_wanted = sorted(self.reload_wanted), set()
        return ids

    def take_stale(self) -> int:
        """Writes dropped by the fence since the last call."""
        n, self._stale_unlogged = self._stale_unlogged, 0
        return n

    def take_all(self) -> tuple[list[ResultRow], list[Pending]]:
        """Everything still buffered (for the spool at stop); the buffers start empty."""
        results, events = self.buffers.take()
        lost = self.rollups.take(None)
        if lost:
            # the spool keeps what the table's state needs; the figures of these minutes
            # stay short by what they counted
            log.warning("latency rollups of %d source-minutes not written", len(lost))
        return list(results.values()), events

    def put_back(self, results: list[ResultRow], events: list[Pending]) -> None:
        """Rows from an earlier run (the spool): written before anything buffered since."""
        self.buffers.restore({r.source_id: r for r in results}, events)

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
        self, total: int, ttl: float, live_within: float, at_least: int = 1
    ) -> tuple[dict[int, int], int]:
        """Renew this daemon's shard leases and take shards up to a fair share of the live
        daemons (at least ``at_least``); return (the shards held with their generations,
        live daemons). A surplus stays held for ``release_shards``."""
        return await self.writer.call(self._lease_sync, total, ttl, live_within, at_least)

    def _lease_sync(
        self, total: int, ttl: float, live_within: float, at_least: int
    ) -> tuple[dict[int, int], int]:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            return leases.lease_round(conn, self.node_id, total, ttl, live_within, at_least)

    async def release_shards(self, shards: list[int]) -> None:
        """Hand these shards back and wake the other daemons' lease rounds."""
        await self.writer.call(self._release_sync, shards)

    def _release_sync(self, shards: list[int]) -> None:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            leases.release(conn, self.node_id, shards)

    # -- webhook outbox (kept under these names for webhooks.Sender) --------------------
    async def claim_deliveries(
        self, limit: int, lease_s: float, per_target: int, busy: list[int]
    ) -> list[dict[str, Any]]:
        return await self.outbox.claim(limit, lease_s, per_target, busy)

    async def release_target(self, webhook_id: int, lease: Any) -> None:
        await self.outbox.release(webhook_id, lease)

    async def delivery_done(self, outbox_id: int, status: int | None = None) -> None:
        await self.outbox.done(outbox_id, status)

    async def delivery_failed(
        self, outbox_id: int, error: str, retry_in: float | None, status: int | None = None
    ) -> None:
        await self.outbox.failed(outbox_id, error, retry_in, status)

    # -- retention -----------------------------------------------------------------------
    async def prune_batch(self, age: timedelta) -> retention.Pruned | None:
        """One small batch of pruning on the writer thread (a flush waits at most one
        batch); None when another process holds the pruning lock."""
        return await self.writer.call(self._prune_sync, age)

    def _prune_sync(self, age: timedelta) -> retention.Pruned | None:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            return retention.prune_batch(conn, age)

    # -- the daily uptime rollup ----------------------------------------------------------
    async def roll_uptime_days(self, roller: uptimedays.Roller) -> int | None:
        """One small batch of the daily uptime rollup on the writer thread (a flush waits
        at most one batch); None when another process holds its lock."""
        return await self.writer.call(self._roll_sync, roller)

    def _roll_sync(self, roller: uptimedays.Roller) -> int | None:
        conn = self.writer.connection()
        with self.writer.outage_guard():
            return roller.batch(conn)
