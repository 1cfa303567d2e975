"""The daemon's view of which sources are its own: shard leases (heartbeat, renew,
rebalance, hand-over), the source table's changes (initial load, resync on a NOTIFY hint or
every RESYNC_EVERY), reading back the truth after a write that did not land, and the spool
an earlier run left. `Daemon` (healthd/daemon/loop.py) inherits these steps; they run as its
APScheduler jobs and hint loops.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from healthd import __version__
from healthd.daemon import spool, supervisor
from healthd.daemon.dispatch import Runtime
from healthd.store import Store, Unavailable, state_from_row
from healthd.store.leases import SHARDS, rebalance, shard_of

log = logging.getLogger("healthd")

LEASE_TTL = 15.0  # a dead daemon's shards are taken over after this
LIVE_WITHIN = 15.0  # a daemon whose heartbeat is older does not count toward the fair share
HAND_BACK_WAIT = 5.0  # at most this long for the last probes of shards being handed back


def quiet_job(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """A job body that never leaks a traceback into the logs: the database being down is
    expected (Unavailable), cancellation at shutdown is expected, anything else is one line."""

    @functools.wraps(fn)
    async def wrapper(*args: Any) -> None:
        try:
            await fn(*args)
        except (Unavailable, asyncio.CancelledError):
            pass
        except Exception as exc:  # noqa: BLE001
            log.error("%s failed: %s: %s", fn.__name__, type(exc).__name__, exc)
            log.debug("%s failed", fn.__name__, exc_info=True)

    return wrapper


class SourceSync:
    """The source-membership steps of the daemon (a mixin: the state lives on `Daemon`)."""

    store: Store
    runtime: Runtime
    stopping: asyncio.Event
    resync_wanted: asyncio.Event
    lease_wanted: asyncio.Event
    lease_rounds: int
    sync_lock: asyncio.Lock
    loaded: bool
    leases: dict[int, int]
    spool_dir: Path
    spool_checked: bool
    spool_files: list[Path]
    spool_landed_at: int

    job_flush: Callable[[], Awaitable[None]]  # the daemon's batched write (healthd/daemon/loop.py)

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
            if src is not None and self.owns(src.id):
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
            await self.job_flush()
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
        siblings = supervisor.siblings() if self.lease_rounds == 0 else 1
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
        if leases == self.leases:
            return
        if set(leases) != set(self.leases) and (self.leases or live > 1):
            log.info("probing %d of %d shards (%d live daemons)", len(leases), SHARDS, live)
        # shards lost, or held again under a new generation (another daemon held them in
        # between): stop probing their sources now, whatever the resync below does; the
        # resync loads the regained ones afresh from the table
        changed = {s for s, g in self.leases.items() if leases.get(s) != g}
        self.leases = leases
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
            await self.job_flush()
            await self.store.release_shards(shards)
        except BaseException:
            # still held: their sources are loaded afresh (and placed) by a resync
            self.runtime.retire_many(parked)
            self.resync_wanted.set()
            raise

    def owns(self, source_id: str) -> bool:
        return shard_of(source_id) in self.leases

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
        await self.job_flush()

    async def initial_load(self) -> None:
        rows = await self.store.load_sources(keep=self.owns)
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
        versions = await self.store.source_versions(keep=self.owns)
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
