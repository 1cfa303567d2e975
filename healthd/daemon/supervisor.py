"""`healthd run --workers N`: one supervisor, N probe processes, one service to systemd.

Each worker is a plain `healthd run` (one event loop, one core); the workers share the
sources through the shard leases exactly as separately started daemons do. The
supervisor probes nothing and holds no database connection. It gives each worker a
NOTIFY_SOCKET of its own (a datagram socket in a private directory), so a worker speaks
the same sd_notify protocol it speaks to systemd, and the supervisor turns what the N
workers say into one voice:

- READY=1 once, when every worker has said READY=1;
- WATCHDOG=1 only while every ready worker has pinged within the last period (each
  worker pings from inside its probe loop, so one stalled loop stops the service's pings);
- one summary line per interval for the whole service (workers send their counts every
  second as HEALTHD_SUMMARY=<json> instead of logging them);
- a worker that dies is replaced after a backoff (1 s doubling to 30 s, reset once a
  worker has run for a minute), with one log line;
- SIGTERM/SIGINT stop every worker (each drains and writes within its own bounded
  grace); stragglers are killed after STOP_TIMEOUT and the supervisor exits 0.

With `--workers 1` there is no supervisor: `healthd run` is the daemon itself, as
before (one process less, and nothing between the probe loop and systemd).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthd.config.settings import Settings, to_environ
from healthd.daemon import logs
from healthd.daemon.lines import Summary, start_line, summary_line
from healthd.daemon.schemagate import SchemaGate
from healthd.daemon.sdnotify import Notifier
from healthd.daemon.supervised import (
    NODE_KEY,
    SIBLINGS_ENV,
    SOURCES_KEY,
    SUMMARY_KEY,
    SUPERVISED_ENV,
    Report,
)

log = logging.getLogger("healthd")

TICK = 0.1  # the supervisor's loop period: reaping, watchdog, summary
STOP_TIMEOUT = 15.0  # a worker's own shutdown is bounded by ~12 s; then it is killed
START_TIMEOUT = 120.0  # a worker not READY by then is counted as silent by the watchdog
RELEASE_TIMEOUT = 10.0  # handing a killed worker's shards back, at stop
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long resets its slot's backoff


@dataclass
class Worker:
    slot: int
    sock: socket.socket
    path: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: bool = False
    sources: int = 0
    last_ping: float = 0.0
    restart_at: float | None = None
    backoff: float = BACKOFF_FIRST
    report: Report | None = None
    reconnected: int = 0  # reported since the last service summary
    behind: float = 0.0  # the worst lag reported since the last service summary
    node_id: str = ""


def parse_notify(datagram: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def aggregate(workers: list[Worker]) -> tuple[str, bool]:
    """One summary line for the whole service from the workers' latest reports; returns
    (line, whether any worker has reported yet). The per-interval parts start over."""
    healthy = failed = reconnected = 0
    behind = 0.0
    buffered: int | None = None
    reported = False
    for w in workers:
        r = w.report
        if r is None:
            continue
        reported = True
        healthy += r.healthy
        failed += r.failed
        reconnected += w.reconnected
        behind = max(behind, w.behind)
        w.reconnected, w.behind = 0, 0.0
        if r.buffered is not None:
            buffered = (buffered or 0) + r.buffered
    return summary_line(Summary(healthy, failed, reconnected, behind), buffered), reported


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.n = settings.workers
        self.notifier = Notifier()
        # the workers ping at twice the rate the supervisor must: a worker is "turning"
        # if it pinged within one supervisor period
        self.period = self.notifier.watchdog_interval
        self.dir = tempfile.mkdtemp(prefix="healthd-supervisor-")
        os.chmod(self.dir, 0o700)
        self.selector = selectors.DefaultSelector()
        self.workers: list[Worker] = []
        for slot in range(self.n):
            path = str(Path(self.dir) / f"w{slot}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.setblocking(False)
            w = Worker(slot, sock, path)
            self.selector.register(sock, selectors.EVENT_READ, w)
            self.workers.append(w)
        self.stopping = False
        self.ready_sent = False
        self.last_watchdog = 0.0
        self.next_summary = 0.0

    # -- workers -------------------------------------------------------------------
    def _env(self, w: Worker) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID")}
        env.update(to_environ(self.settings))
        env["HEALTHD_WORKERS"] = "1"
        env[SUPERVISED_ENV] = str(os.getpid())
        env[SIBLINGS_ENV] = str(self.n)
        env["NOTIFY_SOCKET"] = w.path
        env["WATCHDOG_USEC"] = str(int(self.period * 1e6))  # the worker pings every period/2
        env.pop("WATCHDOG_PID", None)
        return env

    def spawn(self, w: Worker) -> None:
        self._drain(w)  # datagrams the previous process left behind are not this one's
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "healthd", "run"],
            env=self._env(w),
            stdin=subprocess.DEVNULL,
        )
        w.started_at = time.monotonic()
        w.ready = False
        w.last_ping = 0.0
        w.restart_at = None
        w.report = None
        w.reconnected = 0
        w.behind = 0.0
        w.node_id = ""

    def _drain(self, w: Worker) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while True:
                w.sock.recv(65536)

    def reap(self, now: float) -> None:
        for w in self.workers:
            if w.proc is None:
                if w.restart_at is not None and now >= w.restart_at and not self.stopping:
                    self.spawn(w)
                continue
            rc = w.proc.poll()
            if rc is None:
                continue
            pid = w.proc.pid
            w.proc = None
            w.ready = False
            if self.stopping:
                continue
            if now - w.started_at >= STABLE_AFTER:
                w.backoff = BACKOFF_FIRST
            how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with {rc}"
            log.error(
                "worker %d (pid %d) %s; starting a new one in %.0f s", w.slot, pid, how, w.backoff
            )
            if w.node_id:
                # its shards go to the other workers now, not when the leases expire
                self._release_in_background(w.node_id)
            w.restart_at = now + w.backoff
            w.backoff = min(w.backoff * 2, BACKOFF_MAX)

    # -- what the workers say ------------------------------------------------------
    def receive(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            w: Worker = key.data
            while True:
                try:
                    data = w.sock.recv(65536)
                except (BlockingIOError, OSError):
                    break
                if w.proc is not None:
                    self.handle(w, parse_notify(data))

    def handle(self, w: Worker, msg: dict[str, str]) -> None:
        now = time.monotonic()
        if msg.get("READY") == "1":
            w.ready = True
            w.last_ping = now
            with contextlib.suppress(ValueError):
                w.sources = int(msg.get(SOURCES_KEY, "0"))
        if msg.get("WATCHDOG") == "1":
            w.last_ping = now
        if NODE_KEY in msg:
            w.node_id = msg[NODE_KEY]
        if SUMMARY_KEY in msg:
            r = Report.parse(msg[SUMMARY_KEY])
            if r is not None:
                w.report = r
                w.reconnected += r.reconnected
                w.behind = max(w.behind, r.behind)

    # -- what systemd hears --------------------------------------------------------
    def all_turning(self, now: float) -> bool:
        """Every worker that should be probing has pinged within one period. A slot
        waiting for its replacement does not hold the service's pings back (the
        supervisor is doing its job); a live worker that stopped pinging does."""
        for w in self.workers:
            if w.proc is None:
                continue
            if not w.ready:
                if now - w.started_at > START_TIMEOUT:
                    return False
                continue
            if now - w.last_ping > self.period:
                return False
        return True

    def tell_systemd(self, now: float) -> None:
        if not self.ready_sent:
            if all(w.ready for w in self.workers):
                self.ready_sent = True
                total = sum(w.sources for w in self.workers)
                s = self.settings
                log.info("%s", start_line(s.interval))
                log.info(
                    "debounce: rise %d, fall %d; sources: %d; concurrency: %d; workers: %d",
                    s.rise,
                    s.fall,
                    total,
                    s.concurrency,
                    self.n,
                )
                self.notifier.send(
                    "READY=1", f"STATUS=probing {total} sources with {self.n} workers"
                )
                self.last_watchdog = now
                self.next_summary = now + s.interval
            return
        if now - self.last_watchdog >= self.period and self.all_turning(now):
            self.notifier.send("WATCHDOG=1")
            self.last_watchdog = now
        if now >= self.next_summary:
            self.next_summary = now + self.settings.interval
            line, reported = aggregate(self.workers)
            if reported:
                log.info("%s", line)
                self.notifier.send(f"STATUS={line}")

    # -- lifecycle -----------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            # the workers start only on a schema this healthd knows: one line, not one each
            s = self.settings
            gate = SchemaGate(s.require_database_url(), self.notifier, s.db_timeout)
            if not gate.wait_sync(lambda: self.stopping):
                return 0
            for w in self.workers:
                self.spawn(w)
            while not self.stopping:
                self.receive(TICK)
                now = time.monotonic()
                self.reap(now)
                self.tell_systemd(now)
            log.info("stopping %d workers", self.n)
            self.notifier.send("STOPPING=1")
            self.stop_all()
            log.info("stopped")
            return 0
        finally:
            self.close()

    def close(self) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
            w.sock.close()
        self.selector.close()
        self.notifier.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _release_in_background(self, node_id: str) -> threading.Thread:
        """Hand a reaped worker's shards back on a thread (the database may be slow; the
        supervisor's loop must not wait on it)."""
        t = threading.Thread(target=self._release, args=(node_id,), name="release", daemon=True)
        t.start()
        return t

    def _release(self, node_id: str) -> None:
        from healthd.store.leases import release_node

        try:
            release_node(self.settings.require_database_url(), node_id)
        except Exception as exc:  # noqa: BLE001 - the leases expire anyway
            log.debug("releasing %s failed: %s", node_id, exc)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        live = [(w, w.proc) for w in self.workers if w.proc is not None]
        for _, p in live:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
                # a worker stopped with SIGSTOP would never act on SIGTERM
                p.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + STOP_TIMEOUT
        gone: list[str] = []  # node ids of workers that did not hand their shards back
        for w, p in live:
            try:
                rc = p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop within %.0f s; killed", p.pid, STOP_TIMEOUT)
                p.kill()
                p.wait()
                rc = -signal.SIGKILL
            if rc != 0:
                if rc > 0:
                    log.error("worker pid %d exited with %d while stopping", p.pid, rc)
                if w.node_id:
                    gone.append(w.node_id)
        # reaped: nothing probes under their node ids any more, so their shards are free
        # now rather than when the leases expire (the next start takes them at once)
        releases = [self._release_in_background(node) for node in gone]
        for t in releases:
            t.join(RELEASE_TIMEOUT)


def main(settings: Settings) -> int:
    logs.setup(settings.log_format)
    settings.require_database_url()
    return Supervisor(settings).run()
