"""The daemon's view of which sources are its own: shard leases (heartbeat, renew,
rebalance, hand-over), the source table's changes (initial load, resync on a NOTIFY hint or
every RESYNC_EVERY), reading back the truth after a write that did not land, and the spool
an earlier run left. `Daemon` (healthd/daemon/loop.py) owns one `SourceSync` and runs its
steps as APScheduler jobs and hint loops; the sync is given the store, the runtime and the
daemon's batched write, and owns the state of its steps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg

from healthd import __version__
from healthd.daemon import spool, supervised
from healthd.daemon.dispatch import Runtime
from healthd.daemon.jobs import quiet_job
from healthd.store.codec import state_from_row
from healthd.store.facade import Store
from healthd.store.leases import SHARDS, rebalance, shard_of
from healthd.store.writer import Unavailable

log = logging.getLogger("healthd")

LEASE_TTL = 15.0  # a dead daemon's shards are taken over after this
LIVE_WITHIN = 15.0  # a daemon whose heartbeat is older does not count toward the fair share
HAND_BACK_WAIT = 5.0  # at most this long for the last probes of shards being handed back


class LeaseBook:
    """The shards this daemon holds, each with its lease generation (the fencing token a
    result is stamped with, healthd/daemon/dispatch.py). Written by the lease round only."""

    def __init__(self) -> None:
        self.held: dict[int, int] = {}

    def generation(self, source_id: str) -> int:
        """The generation a probe of this source runs under; -1 for a shard not held (the
        store drops such a write)."""
        return self.held.get(shard_of(source_id), -1)

    def owns(self, source_id: str) -> bool:
        return shard_of(source_id) in self.held


class SourceSync:
    """The source-membership steps of one daemon, and their state."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        book: LeaseBook,
        flush: Callable[[], Awaitable[None]],
        stopping: asyncio.Event,
        spool_dir: Path,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.book = book
        self.flush = flush  # the daemon's batched write (healthd/daemon/loop.py job_flush)
        self.stopping = stopping
        self.spool_dir = spool_dir
        self.resync_wanted = asyncio.Event()
        self.lease_wanted = asyncio.Event()
        self.lease_rounds = 0
        self.sync_lock = asyncio.Lock()  # one lease round or resync at a time
        self.loaded = False
        self.spool_checked = False
        self.spool_files: list[Path] = []  # replayed, removed once a flush has landed them
        self.spool_landed_at = 0

    async def after_flush(self) -> None:
        """After each batched write: spool files whose rows have landed are removed, and
        sources whose write did not land as buffered are read back."""
        if self.spool_files and self.store.flushes_landed > self.spool_landed_at:
            spool.remove(self.spool_files)
            log.info("spooled rows written; %d spool file(s) removed", len(self.spool_files))
            self.spool_files = []
        ids = self.store.take_reload()
        if ids:
            await self.reload(ids)

    async def reload(self, ids: list[str]) -> None:
        """Read back the truth of sources whose write did not land as buffered (a lost
        compare-and-swap, a refused row): the table wins over the in-memory state."""
        current = self.runtime.sources
        try:
            rows = await self.store.load_sources([i for i in ids if i in current])
        except BaseException:
            self.store.reload_wanted.update(ids)  # next time
            raise
        for row in rows:
            src = current.get(row["id"])
            if src is not None and self.book.owns(src.id):
                self.runtime.restate(src, state_from_row(row))

    @quiet_job
    async def job_resync(self) -> None:
        async with self.sync_lock:
            await self.resync()

    @quiet_job
    async def job_lease(self) -> None:
        await self.lease_round()

    async def lease_round(self) -> None:
        async with self.sync_lock:
            await self._lease_round()

    async def _lease_round(self) -> None:
        """Heartbeat, then renew and rebalance shard leases. With one daemon it holds every
        shard; a second one gets half at once (it announces itself, the first hands over,
        NOTIFY healthd_leases wakes both); a dead one's shards are taken over once its
        leases expire (at once when a supervisor saw it die). While the database is
        unreachable the daemon keeps the shards it had (and keeps probing them; the fence
        judges those writes later)."""
        if not self.spool_checked:
            await self.replay_spool()  # before any lease is taken: their generations hold
        if self.spool_files:
            await self.flush()
            if self.spool_files:
                raise Unavailable()  # no lease round (no generation moved) until they land
        n = len(self.runtime.sources)
        self.runtime.metrics.db_outages = self.store.outages
        await self.store.heartbeat(
            socket.gethostname(),
            os.getpid(),
            n,
            __version__,
            self.runtime.metrics.snapshot(in_flight=len(self.runtime.busy), sources=n),
        )
        # the first round counts the supervisor's other workers as live: they start now
        siblings = supervised.siblings() if self.lease_rounds == 0 else 1
        leases, live = await self.store.lease_shards(
            SHARDS, LEASE_TTL, LIVE_WITHIN, at_least=siblings
        )
        if self.stopping.is_set():
            # leaving: shards another daemon just handed back are not loaded (tens of
            # thousands of sources, on the way out); the stop hands every shard back
            return
        _, surplus = rebalance(set(leases), SHARDS, live)
        if surplus:
            await self.hand_back(surplus)
            for shard in surplus:
                del leases[shard]
        self.lease_rounds += 1
        if self.lease_rounds == 1 and live > 1:
            # the others hand over their surplus now rather than at their next round
            await self.store.announce_leases()
        stale = self.store.take_stale()
        if stale:
            log.warning(
                "%d stale writes dropped: their shard lease had passed to another daemon",
                stale,
            )
        if leases == self.book.held:
            return
        if set(leases) != set(self.book.held) and (self.book.held or live > 1):
            log.info("probing %d of %d shards (%d live daemons)", len(leases), SHARDS, live)
        # shards lost, or held again under a new generation (another daemon held them in
        # between): stop probing their sources now, whatever the resync below does; the
        # resync loads the regained ones afresh from the table
        changed = {s for s, g in self.book.held.items() if leases.get(s) != g}
        self.book.held = leases
        if changed:
            self.runtime.retire_many(
                [s for s in self.runtime.sources.values() if shard_of(s.id) in changed]
            )
        await self.resync()

    async def hand_back(self, shards: list[int]) -> None:
        """Hand a surplus of shards back once every probe made of their sources is
        written. The next holder places each source at its last probe + interval, so it
        must see that probe: one still in flight at the hand-over (its result dropped), or
        recorded after the last flush and then dropped by the fence, left the table a probe
        behind, and the new holder probed the source again at once."""
        gone = set(shards)
        parked = [s for s in self.runtime.sources.values() if shard_of(s.id) in gone]
        for src in parked:
            src.token = 0  # no further probe of these (their heap entries are stale now)
        flying = [s for s in parked if s.in_flight]  # at most the concurrency cap
        wait = min(max((s.timeout for s in flying), default=0.0) + 0.5, HAND_BACK_WAIT)
        deadline = time.monotonic() + wait
        while flying and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            for src in flying:
                if not src.in_flight:
                    src.token = 0  # its result came in and scheduled the next probe
            flying = [s for s in flying if s.in_flight]
        try:
            await self.flush()
            await self.store.release_shards(shards)
        except BaseException:
            # still held: their sources are loaded afresh (and placed) by a resync
            self.runtime.retire_many(parked)
            self.resync_wanted.set()
            raise

    async def replay_spool(self) -> None:
        """Rows an earlier run could not write go first, under their own lease generations
        (the fence drops any whose shard another daemon has held since)."""
        await self.store.run("SELECT 1")  # connected: which database this is is known
        files, batches = spool.load(self.spool_dir, self.store.writer.identity)
        self.spool_checked = True
        if not files:
            return
        for results, events in batches:  # newest first: each goes under the newer ones
            self.store.put_back(results, events)
        log.info(
            "writing %d results and %d events spooled at an earlier stop",
            sum(len(r) for r, _ in batches),
            sum(len(e) for _, e in batches),
        )
        self.spool_files = files
        self.spool_landed_at = self.store.flushes_landed
        await self.flush()

    async def initial_load(self) -> None:
        rows = await self.store.load_sources(keep=self.book.owns)
        await self.runtime.take_on_gradually(rows)
        self.loaded = True
        del rows
        # 100,000 sources are a few million long-lived objects; every full collection
        # would walk them all while probing allocates briskly. Freeze what start-up built
        # (it lives as long as the daemon) and collect the young generation less often.
        gc.collect()
        gc.freeze()

    async def resync(self) -> None:
        """Pick up added, changed, disabled and removed sources; debounce state is kept
        for a source whose definition changed."""
        if not self.loaded:
            await self.initial_load()
            return
        versions = await self.store.source_versions(keep=self.book.owns)
        current = self.runtime.sources
        self.runtime.retire_many([src for sid, src in current.items() if sid not in versions])
        changed = [
            sid for sid, v in versions.items() if sid not in current or current[sid].version != v
        ]
        if not changed:
            return
        await self.runtime.take_on_gradually(await self.store.load_sources(changed))

    async def listen(self) -> None:
        """LISTEN for operators' changes (a hint; the periodic resync is the safety net)."""
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.store.url, autocommit=True, **self.store.writer.tcp_kwargs()
                ) as conn:
                    await conn.execute("LISTEN healthd_sources")
                    await conn.execute("LISTEN healthd_leases")
                    backoff = 1.0
                    # changes made while we were not listening (start-up, a reconnect)
                    # sent notifications nobody heard: look once now
                    self.resync_wanted.set()
                    async for note in conn.notifies():
                        if note.channel == "healthd_leases":
                            self.lease_wanted.set()
                        else:
                            self.resync_wanted.set()
            except psycopg.Error:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)

    async def resync_on_hint(self) -> None:
        while not self.stopping.is_set():
            await self.resync_wanted.wait()
            await asyncio.sleep(0.2)  # gather a burst of changes into one resync
            self.resync_wanted.clear()
            await self.job_resync()

    async def lease_on_hint(self) -> None:
        """Shards were released or a daemon joined: rebalance now, so a moved shard is
        taken over within a second rather than a lease round later."""
        while not self.stopping.is_set():
            await self.lease_wanted.wait()
            await asyncio.sleep(0.1)
            self.lease_wanted.clear()
            await self.job_lease()
