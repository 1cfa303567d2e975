"""`healthd run`: puts the pieces together.

APScheduler (AsyncIOScheduler) drives everything as short async jobs on one event loop:
dispatch (start due probes), flush (batched writes), resync (pick up operators'
changes), heartbeat, summary, webhooks and the systemd watchdog. SIGTERM/SIGINT set a
flag; shutdown drains probes and writes within a bounded time and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from healthd.config.settings import Settings
from healthd.core.errors import HealthdError
from healthd.daemon import logs, spool, supervised
from healthd.daemon.dispatch import Runtime
from healthd.daemon.jobs import quiet_job
from healthd.daemon.lines import start_line, summary_line
from healthd.daemon.schemagate import SchemaGate
from healthd.daemon.sdnotify import Notifier
from healthd.daemon.sourcesync import LEASE_TTL, LeaseBook, SourceSync
from healthd.notify.sender import Sender
from healthd.plugins import httpclient
from healthd.store import retention, status, uptimedays
from healthd.store.facade import Store
from healthd.store.keeper import LeaseKeeper
from healthd.store.writer import Unavailable

log = logging.getLogger("healthd")

DISPATCH_EVERY = 0.05
FLUSH_EVERY = 0.25
RESYNC_EVERY = 30.0
HEARTBEAT_EVERY = 5.0
BEAT_EVERY = 0.5  # the event loop notes that it turns this often (for the lease keeper)
# an event loop silent for longer is hung, not late: its leases are no longer renewed
LOOP_HUNG_AFTER = 2 * LEASE_TTL
SHUTDOWN_GRACE = 5.0  # probes in flight at stop get this long to finish
STOP_FLUSH = 5.0  # then the last write gets at most this long; what is left is spooled
# the writer retries a lost database at least this often, so a daemon that comes back
# renews (or learns it lost) its leases well within their TTL
MAX_BACKOFF = LEASE_TTL / 3
PRUNE_EVERY = 600.0  # retention: a round of small batches this often (the first soon after start)
PRUNE_FIRST = 5.0
PRUNE_BATCHES = 100  # per round, at most: the rest waits for the next round
UPTIME_DAYS_EVERY = 60.0  # the daily uptime rollup: a round of batches (same bound) this often


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"
        self.store = Store(
            settings.require_database_url(),
            self.node_id,
            timeout=settings.db_timeout,
            max_backoff=MAX_BACKOFF,
        )
        self.book = LeaseBook()
        # results go from the runtime straight to the store, stamped with the lease
        # generation they were probed under (the write lands only while it is held)
        self.runtime = Runtime(settings, self.store, self.book.generation)
        self.sender = Sender(self.store)
        self.sender.public_url = settings.public_url
        # one set of counters, published with the heartbeat (healthd/core/selfmetrics.py)
        self.store.metrics = self.sender.metrics = self.runtime.metrics
        self.notifier = Notifier()
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        )
        self.stopping = asyncio.Event()
        self.last_watchdog = 0.0
        self.unevaluable: set[tuple[int, str]] = set()  # maintenance windows said to be so
        self.withholding_watchdog = False
        self.spool_dir = Path(settings.spool_dir) if settings.spool_dir else spool.default_dir()
        self.sync = SourceSync(
            self.store, self.runtime, self.book, self.job_flush, self.stopping, self.spool_dir
        )
        # under `healthd run --workers N` the supervisor speaks for the service: this
        # worker reports its summary to it (over NOTIFY_SOCKET) instead of logging it
        self.supervised = supervised.supervisor_pid() is not None
        self.loop_turned_at = time.monotonic()
        self.uptime_days = uptimedays.Roller()
        w = self.store.writer
        self.keeper = LeaseKeeper(
            w.url,
            self.node_id,
            LEASE_TTL,
            HEARTBEAT_EVERY,
            LOOP_HUNG_AFTER,
            lambda: self.loop_turned_at,
            {**w.tcp_kwargs(), "application_name": "healthd-leases"},
            w.session_sql(),
            lambda: w.landed_at,
        )

    # -- jobs ----------------------------------------------------------------------
    @quiet_job
    async def job_dispatch(self) -> None:
        self.runtime.dispatch()
        now = time.monotonic()
        if now - self.last_watchdog >= self.notifier.watchdog_interval:
            # sent from inside the probe loop: if dispatching stalls, systemd stops hearing
            # it; and withheld while sources starve, though the loop turns
            self.last_watchdog = now
            if self.on_schedule(now):
                self.notifier.send("WATCHDOG=1")

    def on_schedule(self, now: float) -> bool:
        """False while some source is overdue by more than the watchdog period plus a
        probe timeout (more than a saturated concurrency cap explains). Asked only when
        systemd watches."""
        if not self.notifier.enabled:
            return True
        bound = 2 * self.notifier.watchdog_interval + self.settings.timeout
        late = self.runtime.most_overdue(now)
        if late > bound and not self.withholding_watchdog:
            self.withholding_watchdog = True
            log.error(
                "sources overdue by %.0f s (more than %.0f s): withholding the watchdog ping,"
                " so systemd restarts this daemon if it lasts",
                late,
                bound,
            )
        elif late <= bound and self.withholding_watchdog:
            self.withholding_watchdog = False
            log.warning("sources back on schedule: watchdog pings resume")
        return not self.withholding_watchdog

    @quiet_job
    async def job_flush(self) -> None:
        ids = await self.store.flush()
        if ids:
            self.sender.wake.set()
        await self.sync.after_flush()

    @quiet_job
    async def job_summary(self) -> None:
        summary = self.runtime.take_summary()
        buffered = self.store.backlog()[0] if self.store.down_since is not None else None
        if self.supervised:
            report = supervised.Report(
                summary.healthy, summary.failed, summary.reconnected, summary.behind, buffered
            )
            self.notifier.send(report.datagram())
            return
        line = summary_line(summary, buffered)
        log.info("%s", line)
        self.notifier.send(f"STATUS={line}")

    async def job_webhook_tick(self) -> None:
        # retries come due with time, not with new transitions: look once a second. The
        # sending itself runs in webhook_waker, so a slow receiver never holds a job open.
        self.sender.wake.set()

    @quiet_job
    async def job_prune(self) -> None:
        """Retention in small batches, each its own short transaction on the writer
        thread, so probing results never wait long behind it. The cut-off is counted on
        the database's clock (healthd/store/retention.py), not this daemon's."""
        age = timedelta(days=self.settings.history_days)
        total = 0
        for _ in range(PRUNE_BATCHES):
            if self.stopping.is_set():
                return
            done = await self.store.prune_batch(age)
            if done is None:
                return  # another daemon is pruning
            total += done.history + done.rollups + done.deliveries
            if not retention.more(done):
                break
            await asyncio.sleep(0)
        if total:
            log.info("pruned %d rows older than %d days", total, self.settings.history_days)

    @quiet_job
    async def job_uptime_days(self) -> None:
        """The daily uptime rollup (healthd/store/uptimedays.py), a small batch at a time on
        the writer thread, like retention."""
        for _ in range(PRUNE_BATCHES):
            if self.stopping.is_set():
                return
            n = await self.store.roll_uptime_days(self.uptime_days)
            if n is None or n < uptimedays.BATCH:
                return
            await asyncio.sleep(0)

    @quiet_job
    async def job_windows(self) -> None:
        """Say once per window that the database cannot evaluate it (a time zone it does
        not know): it fails only itself, never open, so transitions inside it page."""
        rows = await self.store.run(status.UNEVALUABLE_WINDOWS)
        now = {(int(r["id"]), str(r["tz"])) for r in rows}
        for wid, tz in sorted(now - self.unevaluable):
            log.error(
                "maintenance window %d: time zone %r is not known to the database server;"
                " the window is ignored (never open) until it is removed or fixed",
                wid,
                tz,
            )
        self.unevaluable = now

    @quiet_job
    async def send_webhooks(self) -> None:
        while await self.sender.run_once(wait=False) and not self.stopping.is_set():
            pass

    async def webhook_waker(self) -> None:
        try:
            while not self.stopping.is_set():
                await self.sender.wake.wait()
                self.sender.wake.clear()
                await self.send_webhooks()
        finally:
            await self.sender.cancel()  # the per-target batches it started

    # -- lifecycle -----------------------------------------------------------------
    def beat(self) -> None:
        """Note that the event loop turns (the lease keeper renews only while it does)."""
        self.loop_turned_at = time.monotonic()
        asyncio.get_running_loop().call_later(BEAT_EVERY, self.beat)

    async def start(self) -> None:
        try:
            await self.sync.lease_round()  # takes this daemon's shards and loads their sources
        except Unavailable:
            # the reason (unreachable, authentication failed) was logged by the store
            log.error("no database at start; will keep retrying")
        except Exception as exc:  # noqa: BLE001 - e.g. refused: the lease job retries
            log.error(
                "first lease round failed: %s: %s; will keep retrying", type(exc).__name__, exc
            )
        s, sch = self.settings, self.scheduler
        sch.add_job(self.job_dispatch, "interval", seconds=DISPATCH_EVERY, id="dispatch")
        sch.add_job(self.job_flush, "interval", seconds=FLUSH_EVERY, id="flush")
        sch.add_job(self.sync.job_resync, "interval", seconds=RESYNC_EVERY, id="resync")
        sch.add_job(self.sync.job_lease, "interval", seconds=HEARTBEAT_EVERY, id="lease")
        # a worker reports to its supervisor every second (its counts then lag a shard move
        # by a second at most), the supervisor logs once per interval for all of them
        every = min(s.interval, 1.0) if self.supervised else s.interval
        sch.add_job(self.job_summary, "interval", seconds=every, id="summary")
        sch.add_job(self.job_webhook_tick, "interval", seconds=1.0, id="webhooks")
        sch.add_job(
            self.job_windows,
            "interval",
            seconds=RESYNC_EVERY,
            id="windows",
            next_run_time=datetime.now(UTC),
        )
        sch.add_job(
            self.job_prune,
            "interval",
            seconds=PRUNE_EVERY,
            id="prune",
            next_run_time=datetime.now(UTC) + timedelta(seconds=PRUNE_FIRST),
        )
        sch.add_job(
            self.job_uptime_days,
            "interval",
            seconds=UPTIME_DAYS_EVERY,
            id="uptime_days",
            next_run_time=datetime.now(UTC) + timedelta(seconds=PRUNE_FIRST),
        )
        sch.start()
        # under a supervisor the service's start lines are the supervisor's (once, in total)
        level = logging.DEBUG if self.supervised else logging.INFO
        log.log(level, "%s", start_line(s.interval))
        # the original's line stays exactly as it was (scripts grep it); detail goes here
        log.log(
            level,
            "debounce: rise %d, fall %d; sources: %d; concurrency: %d",
            s.rise,
            s.fall,
            len(self.runtime.sources),
            s.concurrency,
        )
        ready = ["READY=1", f"STATUS=probing {len(self.runtime.sources)} sources"]
        if self.supervised:  # for the supervisor: the total, and whose shards to release
            ready += [
                f"{supervised.SOURCES_KEY}={len(self.runtime.sources)}",
                f"{supervised.NODE_KEY}={self.node_id}",
            ]
        self.notifier.send(*ready)

    async def stop(self) -> None:
        """Bounded: probes get SHUTDOWN_GRACE, the last write STOP_FLUSH (a write stuck on
        a silent database is cut), and what is still unwritten goes to the spool."""
        self.notifier.send("STOPPING=1")
        self.scheduler.pause()
        await self.runtime.drain(SHUTDOWN_GRACE)
        try:
            await asyncio.wait_for(
                self.store.flush(deadline=STOP_FLUSH, everything=True), STOP_FLUSH + 1
            )
        except Unavailable:
            pass
        except TimeoutError:
            # a flush job stuck on a silent connection still holds its batch: cut the
            # connection, and let the job put the batch back before the spool is written
            self.store.writer.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.idle(), 3)
        except Exception as exc:  # noqa: BLE001 - nothing may turn a stop into a crash
            log.error("last write failed: %s: %s", type(exc).__name__, exc)
        self.spool_leftovers()
        # nothing renews what is handed back below (a renewal racing it finds nothing to
        # renew: it matches this node's rows only), so a short wait for the thread will do
        await asyncio.to_thread(self.keeper.stop, 0.5)
        if self.store.down_since is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.forget_node(), 2)
        await self.runtime.close_all()
        # jobs are all short and the scheduler is paused: nothing left to cancel
        self.scheduler.shutdown(wait=False)
        await httpclient.close_session()
        await self.store.close(deadline=2)
        self.notifier.close()

    def spool_leftovers(self) -> None:
        results, events = self.store.take_all()
        if not results and not events:
            return
        try:
            path = spool.save(
                self.spool_dir, self.store.writer.identity, self.node_id, results, events
            )
        except OSError as exc:
            log.error(
                "stopping with %d results and %d events not written (database unavailable),"
                " and the spool directory %s is not writable (%s): they are lost",
                len(results),
                len(events),
                self.spool_dir,
                exc.strerror or exc,
            )
            return
        # the replayed files' rows are in this one now
        spool.remove(self.sync.spool_files)
        log.error(
            "stopping with %d results and %d events not written (database unavailable);"
            " spooled to %s, written first at the next start",
            len(results),
            len(events),
            path,
        )

    async def main(self) -> int:
        """The whole run: start the jobs and the listeners, wait for a signal, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        if not supervised.die_with_supervisor():
            log.error("the supervisor is gone; not starting")
            return 1
        # never against a schema this healthd does not know (one line, then it waits)
        s = self.settings
        gate = SchemaGate(self.store.url, self.notifier, s.db_timeout, ready=not self.supervised)
        if not await gate.wait(self.stopping):
            return 0
        if self.supervised:
            # before any lease is taken: a worker that dies at its first round has its
            # shards handed back by the supervisor at once, not after they expire
            self.notifier.send(f"{supervised.NODE_KEY}={self.node_id}")
        self.beat()
        # the first lease round may load 100,000 sources: its leases are renewed meanwhile
        self.keeper.start()
        await self.start()
        helpers = [
            asyncio.ensure_future(c)
            for c in (
                self.sync.listen(),
                self.sync.resync_on_hint(),
                self.sync.lease_on_hint(),
                self.webhook_waker(),
            )
        ]
        await self.stopping.wait()
        log.info("stopping")
        for h in helpers:
            h.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await self.stop()
        p99 = self.runtime.lag_p99()
        if p99 is not None:
            log.debug("schedule lag p99 %.3f s", p99)
        log.info("stopped")
        return 0


def main(settings: Settings) -> int:
    logs.setup(settings.log_format)
    gc.set_threshold(50_000, 20, 100)  # probing allocates many short-lived objects
    try:
        settings.require_database_url()
        daemon = Daemon(settings)
    except HealthdError as exc:
        log.error("%s", exc)
        return 1
    try:
        import uvloop  # optional: measurably faster probing (tests/bench/README.md)

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    return int(runner(daemon.main()))
