"""Bounds at the edges, against real processes: one target that floods or never answers
does not cost the others their probes or their notifications."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Request, Scripted, Target, hanging_listener

pytestmark = pytest.mark.slow
CANARIES = 50


@contextlib.contextmanager
def flooding_listener() -> Iterator[int]:
    """A TCP port whose every connection is sent bytes as fast as the peer reads them,
    never a newline, until the peer hangs up."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()
    chunk = b"x" * 65536

    def flood(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while not stop.is_set():
                conn.sendall(chunk)

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn = srv.accept()[0]
                threading.Thread(target=flood, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        srv.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Canaries:
    """One Scripted server for CANARIES http sources of 1 s, each on its own path; keeps
    when each path was asked."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.server = Scripted(self._answer)
        self.base = self.server.base

    def _answer(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        with self.server.lock:
            self.times.setdefault(req.path, []).append(time.monotonic())
        return 200, {}, b"ok"

    def all_probed(self) -> bool:
        with self.server.lock:
            return len(self.times) == CANARIES

    def since(self, t0: float, t1: float) -> tuple[int, float]:
        """(probes, median gap between a canary's consecutive probes) within [t0, t1]."""
        with self.server.lock:
            runs = [[t for t in ts if t0 <= t <= t1] for ts in self.times.values()]
        gaps = [b - a for ts in runs for a, b in zip(ts, ts[1:], strict=False)]
        return sum(map(len, runs)), statistics.median(gaps) if gaps else float("inf")


def _canary_rows(db: psycopg.Connection[Any], base: str) -> None:
    for i in range(CANARIES):
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config, interval_s)"
            " VALUES (%s, %s, 'http', %s, 1)",
            (f"c{i}", f"c{i}", json.dumps({"url": f"{base}/c{i}"})),
        )


def test_a_flooding_tcp_target_does_not_starve_the_others(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    canaries = Canaries()
    try:
        with flooding_listener() as port:
            _canary_rows(db, canaries.base)
            db.execute(
                "INSERT INTO data_sources (id, name, plugin, config, interval_s, timeout_s)"
                " VALUES ('flood', 'flood', 'tcp', %s, 1, 5)",
                (json.dumps({"host": "127.0.0.1", "port": port, "expect": "\n"}),),
            )
            d = DaemonProcess(db_url, tmp_path / "d.log")
            try:
                # the daemon is up and probing every canary
                wait_for(canaries.all_probed, what="every canary probed")
                window = 5.0
                cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
                time.sleep(window)  # the measurement window itself, not a wait for a condition
                t1 = time.monotonic()
                cpu = cpu_seconds(d.proc.pid) - cpu0
                probes, gap = canaries.since(t0, t1)
                # a canary is probed 1 s after its last result (about 1.05 s apart here);
                # on main the flood's probe spun the loop for its whole timeout: the
                # canaries probed 2.4 s apart (103 probes of 250) and ~80% of a core
                assert gap < 1.35, (gap, probes, cpu)
                assert probes >= 0.65 * CANARIES * (t1 - t0), (probes, gap, cpu)
                assert cpu < 0.4 * (t1 - t0), (cpu, probes, gap)
                wanted = "no '\\n' in the first 1 MiB of the reply"
                wait_for(
                    lambda: (
                        db.execute(
                            "SELECT test_error_message FROM data_sources WHERE id = 'flood'"
                        ).fetchone()
                        == (wanted,)
                    ),
                    what="the flood judged on its first MiB",
                )
            finally:
                d.stop()
    finally:
        canaries.server.close()


class Receiver:
    """A webhook receiver that answers 200 at once and keeps, for each delivery, how long
    after its transition it arrived."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.server = Scripted(self._answer)
        self.url = self.server.base + "/hook"

    def _answer(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        at = datetime.fromisoformat(json.loads(req.body)["at"].replace("Z", "+00:00"))
        with self.server.lock:
            self.delays.append(time.time() - at.timestamp())
        return 200, {}, b""

    def count(self) -> int:
        with self.server.lock:
            return len(self.delays)


def test_a_receiver_that_never_answers_does_not_delay_the_others(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, cli: Any
) -> None:
    flipping = Target()
    flipping.set("alternate")  # every probe the other answer: a transition each time
    good = Receiver()
    try:
        with hanging_listener() as dead_port:
            for url in (f"http://127.0.0.1:{dead_port}/hook", good.url):
                assert cli("webhooks", "add", url).returncode == 0
            for i in range(3):
                db.execute(
                    "INSERT INTO data_sources (id, name, plugin, config, interval_s)"
                    " VALUES (%s, %s, 'http', %s, 0.5)",
                    (f"s{i}", f"s{i}", json.dumps({"url": flipping.url})),
                )
            d = DaemonProcess(db_url, tmp_path / "d.log", HEALTHD_RISE="1", HEALTHD_FALL="1")
            try:
                # past the first wave, when the dead receiver's attempts have started
                wait_for(lambda: good.count() >= 30, timeout=30, what="30 deliveries")
                with good.server.lock:
                    delays = good.delays[6:]
                median = statistics.median(delays)
                # each round of the sender used to wait for its whole batch, the dead
                # receiver's 10 s attempts with it
                assert median < 1.0, (median, max(delays))
                assert max(delays) < 3.0, (median, max(delays))
                outbox = db.execute(
                    "SELECT count(*) FILTER (WHERE delivered_at IS NULL), count(*)"
                    " FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id"
                    " WHERE w.url LIKE %s",
                    (f"%:{dead_port}/%",),
                ).fetchone()
                assert outbox[0] == outbox[1] > 0, outbox  # the dead one's are all pending
            finally:
                d.stop()
    finally:
        good.server.close()
        flipping.close()


# -- control characters, terminal escapes, the tcp port ------------------------------


def one_line(r: Any) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return str(lines[0])


TCP = json.dumps({"host": "127.0.0.1", "port": 1})


@pytest.mark.parametrize("name", ["a\x1b[31mred", "bell\x07", "tab\there", "c1\x9b2J"])
def test_control_characters_in_a_name_are_refused_in_one_line(
    cli: Any, db: psycopg.Connection[Any], tmp_path: Path, name: str
) -> None:
    r = cli("sources", "add", "web", "--plugin", "tcp", "--config", TCP, "--name", name)
    assert r.returncode == 1
    assert "name: must not contain control characters" in one_line(r)
    f = tmp_path / "s.json"
    f.write_text(
        json.dumps(
            {
                "sources": [
                    {"id": "t", "plugin": "tcp", "config": {"host": "h", "port": 1}, "name": name}
                ]
            }
        )
    )
    r = cli("sources", "import", str(f))
    assert r.returncode == 1
    assert "entry 1 (id 't'): name: must not contain control characters" in one_line(r)
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


@pytest.mark.parametrize("port", [0, 65536, -1, 1 << 40])
def test_the_tcp_port_is_range_checked_at_import(
    cli: Any, db: psycopg.Connection[Any], tmp_path: Path, port: int
) -> None:
    f = tmp_path / "s.json"
    cfg = {"host": "h", "port": port}
    f.write_text(json.dumps({"sources": [{"id": "t", "plugin": "tcp", "config": cfg}]}))
    r = cli("sources", "import", str(f))
    assert r.returncode == 1
    assert "entry 1 (id 't'): config.port: must be 1-65535" in one_line(r)
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


def test_a_control_character_row_written_by_sql_fails_only_itself(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    good = Target()
    try:
        for sid, name in (("good", "Good"), ("bad", "Bad\x1b]0;owned\x07"), ("b\x1bd", "x")):
            db.execute(
                "INSERT INTO data_sources (id, name, plugin, config, interval_s)"
                " VALUES (%s, %s, 'http', %s, 0.2)",
                (sid, name, json.dumps({"url": good.url})),
            )
        d = DaemonProcess(db_url, tmp_path / "d.log")
        try:
            rows = wait_for(
                lambda: (
                    dict(
                        db.execute(
                            "SELECT id, test_error_message FROM data_sources"
                            " WHERE id <> 'good' AND connection_status = 'error'"
                        ).fetchall()
                    )
                    if db.execute(
                        "SELECT count(*) FROM data_sources WHERE connection_status = 'error'"
                    ).fetchone()[0]
                    == 2
                    else None
                ),
                what="both rows reported",
            )
            assert "name: must not contain control characters" in rows["bad"]
            assert "id: must not contain control characters" in rows["b\x1bd"]
            first = good.count("ok")
            wait_for(lambda: good.count("ok") >= first + 5, what="the good source still probed")
        finally:
            d.stop()
        assert "\x1b" not in d.log() and "\x07" not in d.log(), d.log()
    finally:
        good.close()


def test_terminal_escapes_from_a_target_are_shown_not_obeyed(
    healthd_cli: Any, db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    evil = "\x1b[2J\x1b]0;pwned\x07\x9b31m"
    cfg = json.dumps({"argv": ["sh", "-c", f"printf 'CRITICAL {evil}'; exit 2"]})
    r = healthd_cli("probe", "--plugin", "command", "--config", cfg)
    assert r.returncode == 2, r
    assert not any(c in r.stdout for c in "\x1b\x07\x9b"), repr(r.stdout)
    assert "\\x1b[2J" in r.stdout, repr(r.stdout)
    # the daemon's log line for the source's transition says the same
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('evil', 'Evil', 'command', %s)",
        (json.dumps({"argv": ["sh", "-c", f"printf 'CRITICAL {evil}'; exit 2"]}),),
    )
    d = DaemonProcess(db_url, tmp_path / "d.log", HEALTHD_RISE="1", HEALTHD_FALL="1")
    try:
        wait_for(lambda: "source evil: unknown -> error" in d.log(), what="the transition line")
    finally:
        d.stop()
    log = d.log()
    assert not any(c in log for c in "\x1b\x07\x9b"), repr(log)
    assert "\\x1b[2J" in log, log
