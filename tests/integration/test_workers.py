"""`healthd run --workers 2`: one supervisor, two probe processes sharing the sources
through the shard leases, one voice to systemd."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.config import settings
from healthd.daemon import supervisor
from healthd.daemon.loop import LEASE_TTL
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow
N = 40
INTERVAL = 2.0


def children(pid: int) -> list[int]:
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in raw.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def seed(db: psycopg.Connection[Any], target: Target, n: int = N) -> None:
    for i in range(n):
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', %s)",
            (f"s{i}", f"s{i}", json.dumps({"url": f"{target.url}s{i}"})),
        )


def probe_times(target: Target) -> dict[str, list[float]]:
    with target.lock:
        out: dict[str, list[float]] = {}
        for r in target.requests:
            out.setdefault(r["path"], []).append(r["at"])
        return out


def worst_gap(times: dict[str, list[float]], start: float, end: float) -> float:
    """The longest any source went unprobed within [start, end]."""
    worst = 0.0
    for path in (f"/s{i}" for i in range(N)):
        ts = [start] + [t for t in times.get(path, []) if start <= t <= end] + [end]
        worst = max(worst, max(b - a for a, b in zip(ts, ts[1:], strict=False)))
    return worst


def two_nodes_leasing(db: psycopg.Connection[Any], pids: list[int]) -> bool:
    rows = db.execute(
        "SELECT n.pid, count(*) FROM shard_leases l JOIN daemon_nodes n USING (node_id)"
        " WHERE l.expires_at > now() GROUP BY n.pid"
    ).fetchall()
    return sorted(p for p, _ in rows) == sorted(pids) and sum(c for _, c in rows) == 64


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
def supervised(db_url: str, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(**env: str) -> DaemonProcess:
        d = DaemonProcess(
            db_url,
            tmp_path / f"supervisor{len(started)}.log",
            HEALTHD_WORKERS="2",
            HEALTHD_INTERVAL=str(INTERVAL),
            **env,
        )
        started.append(d)
        return d

    yield start
    for d in started:
        workers = children(d.proc.pid)
        if d.proc.poll() is None:
            d.stop()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def worker_pids(d: DaemonProcess) -> list[int]:
    pids = children(d.proc.pid)
    return pids if len(pids) == 2 else []


def test_two_workers_probe_each_source_once_per_interval(
    db: psycopg.Connection[Any], target: Target, supervised: Callable[..., DaemonProcess]
) -> None:
    seed(db, target)
    d = supervised()
    pids = wait_for(lambda: worker_pids(d), what="two worker processes")
    wait_for(lambda: two_nodes_leasing(db, pids), timeout=40, what="both workers holding shards")
    # each took its share at its first lease round: no shard went to one worker and then
    # on to the other (that worker would have loaded every source, then handed half over)
    assert db.execute("SELECT max(generation) FROM shard_leases").fetchone() == (1,)
    wait_for(lambda: "Health check service started" in d.log(), what="the start line")
    time.sleep(1.0)  # probes placed before the split settle
    with target.lock:
        target.requests.clear()
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start >= 3 * INTERVAL, timeout=30, interval=0.2)
    counts = {p: len(ts) for p, ts in probe_times(target).items()}
    # every source probed by one of the two, and none by both (that would double the rate)
    assert len(counts) == N, sorted(counts)
    assert min(counts.values()) >= 2 and max(counts.values()) <= 4, counts
    rows = db.execute("SELECT pid FROM daemon_nodes").fetchall()
    assert sorted(r[0] for r in rows) == sorted(pids)
    # one summary line per interval for the whole service (not one per worker), one start line
    before, began = d.log().count("Health check: "), time.monotonic()
    wait_for(lambda: time.monotonic() - began >= 3 * INTERVAL, timeout=30, interval=0.2)
    lines = [ln for ln in d.log().splitlines() if "Health check: " in ln][before:]
    assert 2 <= len(lines) <= 4, lines
    assert all(f"Health check: {N} healthy, 0 failed" in ln for ln in lines), lines
    log = d.log()
    assert log.count("Health check service started") == 1, log
    assert f"sources: {N}; " in log and "workers: 2" in log, log
    assert d.stop() == 0


def test_killed_worker_is_replaced_and_its_sources_taken_over(
    db: psycopg.Connection[Any], target: Target, supervised: Callable[..., DaemonProcess]
) -> None:
    seed(db, target)
    d = supervised()
    pids = wait_for(lambda: worker_pids(d), what="two worker processes")
    wait_for(lambda: two_nodes_leasing(db, pids), timeout=40, what="both workers holding shards")
    victim = pids[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    new = wait_for(
        lambda: [p for p in worker_pids(d) if p != victim and p not in pids],
        timeout=20,
        what="a replacement worker",
    )
    survivor = [p for p in pids if p != victim]
    wait_for(
        lambda: two_nodes_leasing(db, survivor + new),
        timeout=LEASE_TTL + 30,
        what="the replacement holding shards",
    )
    # a full interval after the hand-over so that every source had its chance
    settle = time.monotonic()
    wait_for(lambda: time.monotonic() - settle >= INTERVAL + 1, timeout=10, interval=0.2)
    gap = worst_gap(probe_times(target), killed_at, time.monotonic())
    assert gap <= LEASE_TTL + INTERVAL + 2.0, gap
    log = d.log()
    assert log.count(f"(pid {victim}) killed by SIGKILL; starting a new one in") == 1, log
    assert d.stop() == 0


def test_sigterm_stops_every_worker(
    db: psycopg.Connection[Any], target: Target, supervised: Callable[..., DaemonProcess]
) -> None:
    seed(db, target, 4)
    d = supervised()
    pids = wait_for(lambda: worker_pids(d), what="two worker processes")
    wait_for(lambda: "Health check service started" in d.log(), what="every worker ready")
    began = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - began < 20
    assert not [p for p in pids if alive(p)]
    log = d.log()
    assert "did not stop" not in log and "while stopping" not in log, log
    # each worker handed its shards back on the way out
    assert db.execute("SELECT count(*) FROM daemon_nodes").fetchone()[0] == 0


class NotifyListener:
    def __init__(self) -> None:
        self.path = str(Path(tempfile.mkdtemp()) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def lines(self, what: str, since: float = 0.0) -> list[float]:
        return [t for t, line in list(self.messages) if line == what and t >= since]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_notify_ready_once_and_watchdog_only_while_every_loop_turns(
    db: psycopg.Connection[Any], target: Target, supervised: Callable[..., DaemonProcess]
) -> None:
    seed(db, target, 8)
    listener = NotifyListener()
    try:
        d = supervised(NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="1000000")
        wait_for(lambda: listener.lines("READY=1"), timeout=30, what="READY=1")
        pids = wait_for(lambda: worker_pids(d), what="two worker processes")
        now = time.monotonic()
        wait_for(lambda: len(listener.lines("WATCHDOG=1", now)) >= 2, what="watchdog pings")
        os.kill(pids[0], signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            # the last ping the stopped worker sent is at most one period (0.5 s) old,
            # the supervisor's freshness window is one period: allow a second, then
            # watch three seconds of silence
            quiet_from = stopped + 1.2
            wait_for(lambda: time.monotonic() >= quiet_from + 3.0, timeout=10, interval=0.1)
            assert listener.lines("WATCHDOG=1", quiet_from) == []
        finally:
            os.kill(pids[0], signal.SIGCONT)
        resumed = time.monotonic()
        wait_for(lambda: listener.lines("WATCHDOG=1", resumed), what="pings once it turns again")
        # a worker's death and replacement do not make the service READY a second time
        os.kill(pids[1], signal.SIGKILL)
        wait_for(
            lambda: [p for p in worker_pids(d) if p not in pids], timeout=20, what="replacement"
        )
        wait_for(lambda: "killed by SIGKILL" in d.log(), what="the replacement log line")
        assert d.stop() == 0
        wait_for(lambda: listener.lines("STOPPING=1"), timeout=5, what="STOPPING=1")
        assert len(listener.lines("READY=1")) == 1
        # the workers' own READY/STATUS never reach systemd's socket
        assert not any(line.startswith("HEALTHD_") for _, line in listener.messages)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--workers", "0"], {}, "--workers"),
        (["--workers", "two"], {}, "--workers"),
        ([], {"HEALTHD_WORKERS": "-1"}, "HEALTHD_WORKERS"),
        ([], {"HEALTHD_WORKERS": "many"}, "HEALTHD_WORKERS"),
    ],
)
def test_bad_worker_count_is_one_line(
    db_url: str, args: list[str], env: dict[str, str], named: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "healthd", "run", *args],
        env={**os.environ, "HEALTHD_DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "positive integer or auto" in lines[0], lines


def test_hand_over_leaves_no_dark_gap(
    db: psycopg.Connection[Any], db_url: str, target: Target, tmp_path: Path
) -> None:
    """A second daemon joining, then leaving: the shards move twice, and no source waits
    longer than its interval plus a few seconds."""
    seed(db, target)
    a = DaemonProcess(db_url, tmp_path / "a.log", HEALTHD_INTERVAL=str(INTERVAL))
    b: DaemonProcess | None = None
    try:
        wait_for(lambda: len(probe_times(target)) == N, what="every source probed once")
        began = time.monotonic()
        b = DaemonProcess(db_url, tmp_path / "b.log", HEALTHD_INTERVAL=str(INTERVAL))
        pids = [a.proc.pid, b.proc.pid]
        wait_for(lambda: two_nodes_leasing(db, pids), timeout=30, what="the shards split")
        settle = time.monotonic()
        wait_for(lambda: time.monotonic() - settle >= INTERVAL + 1, timeout=10, interval=0.2)
        assert b.stop() == 0  # hands its shards back
        wait_for(lambda: two_nodes_leasing(db, [a.proc.pid]), timeout=30, what="all back")
        settle = time.monotonic()
        wait_for(lambda: time.monotonic() - settle >= INTERVAL + 1, timeout=10, interval=0.2)
        gap = worst_gap(probe_times(target), began, time.monotonic())
        assert gap <= INTERVAL + 3.0, gap
    finally:
        for d in (a, b):
            if d is not None and d.proc.poll() is None:
                d.stop()


def test_worker_killed_at_stop_has_its_shards_handed_back(
    db: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker still busy when the stop bound runs out is killed, and its leases are
    released then (not left to expire: the next start would wait a lease TTL for them)."""
    monkeypatch.setattr(supervisor, "STOP_TIMEOUT", 0.5)
    node = "stuck-worker"
    db.execute(
        "INSERT INTO daemon_nodes (node_id, hostname, pid, sources, version)"
        " VALUES (%s, 'h', 1, 0, 'x')",
        (node,),
    )
    db.execute(
        "UPDATE shard_leases SET node_id = %s, expires_at = now() + interval '1 hour'"
        " WHERE shard < 8",
        (node,),
    )
    sup = supervisor.Supervisor(settings.load({}, database_url=db_url, workers=1))
    try:
        w = sup.workers[0]
        # a worker that does not act on SIGTERM (stands for one stuck past the bound)
        w.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                " print('ready', flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
        )
        assert w.proc.stdout is not None and w.proc.stdout.readline() == b"ready\n"
        w.node_id = node
        sup.stop_all()
        assert w.proc.returncode == -signal.SIGKILL
    finally:
        sup.close()
        if w.proc is not None and w.proc.stdout is not None:
            w.proc.stdout.close()
    held = db.execute("SELECT count(*) FROM shard_leases WHERE node_id = %s", (node,)).fetchone()
    assert held == (0,)
    assert db.execute(
        "SELECT count(*) FROM daemon_nodes WHERE node_id = %s", (node,)
    ).fetchone() == (0,)
