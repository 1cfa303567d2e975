"""statusapi under a real gunicorn: a smoke test of every route and the SSE stream."""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.local.embedded import free_port
from tests.fix_api import SECRET, seed
from tests.fix_procs import Gunicorn, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def server(db_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[Gunicorn]:
    seed(db)
    db.execute("INSERT INTO daemon_nodes (node_id, hostname, pid) VALUES ('n', 'h', 1)")
    g = Gunicorn(
        db_url.replace("postgres@", "healthd_readonly@"),
        tmp_path / "gunicorn.log",
        STATUSAPI_STREAM_KEEPALIVE="1",
    )
    yield g
    assert g.stop() == 0
    assert "Traceback" not in g.log_path.read_text()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_every_route_smoke(server: Gunicorn) -> None:
    for route, status in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/api/v1/sources", 200),
        ("/api/v1/sources/web", 200),
        ("/api/v1/sources/web/events", 200),
        ("/api/v1/events?after=0", 200),
        ("/api/v1/summary", 200),
        ("/api/ai/connections", 200),
        ("/api/ai/connection-status", 200),
        ("/metrics", 200),
        ("/openapi.json", 200),
        ("/api/v1/sources/ghost", 404),
        ("/nope", 404),
        ("/api/v1/sources?limit=0", 400),
    ]:
        code, headers, body = get(server.base + route)
        assert code == status, (route, code, body)
        assert SECRET.encode() not in body
        if route != "/metrics":
            assert headers["Content-Type"].startswith("application/json"), route
            json.loads(body)


class SSE:
    def __init__(self, port: int, last_event_id: int | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        self.conn.request("GET", "/api/v1/stream", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200 and self.resp.getheader("Content-Type").startswith(
            "text/event-stream"
        )

    def next_event(self, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        fields: dict[str, Any] = {}
        while time.monotonic() < deadline:
            line = self.resp.fp.readline().decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if key == "data" else value
        raise AssertionError("no event within the deadline")

    def close(self) -> None:
        self.conn.close()


def add_event(db: psycopg.Connection[Any], sid: str, to: str) -> int:
    return db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status) VALUES (%s, 'connected', %s)"
        " RETURNING id",
        (sid, to),
    ).fetchone()[0]


def test_stream_delivers_and_resumes(server: Gunicorn, db: psycopg.Connection[Any]) -> None:
    sub = SSE(server.port)  # the stream's position is fixed before its headers are sent
    first = add_event(db, "web", "error")
    ev = sub.next_event()
    assert ev["event"] == "status" and int(ev["id"]) == first
    assert ev["data"]["source_id"] == "web" and ev["data"]["to"] == "error"
    sub.close()
    # events written while nobody listened arrive on resume, in order, nothing missed
    missed = [add_event(db, "db", "connected"), add_event(db, "web", "connected")]
    resumed = SSE(server.port, last_event_id=first)
    got = [int(resumed.next_event()["id"]) for _ in missed]
    assert got == missed
    later = add_event(db, "new", "connected")
    assert int(resumed.next_event()["id"]) == later
    resumed.close()


@pytest.mark.parametrize(
    ("name", "raw"), [("STATUSAPI_POOL_MAX", "plenty"), ("STATUSAPI_WORKERS", "many")]
)
def test_bad_setting_stops_gunicorn_with_one_line(name: str, raw: str) -> None:
    """A bad STATUSAPI_* value: gunicorn exits at once (no worker respawn loop) and its
    output is the one line naming the variable, no traceback. No database is reached."""
    env = {
        **os.environ,
        "STATUSAPI_DATABASE_URL": "postgresql://127.0.0.1:1/none",
        "STATUSAPI_WORKERS": "2",
        name: raw,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(Gunicorn.CONF),
            "-b",
            f"127.0.0.1:{free_port()}",
            "statusapi:create_app()",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}: ") and repr(raw) in lines[0], out
    assert "Traceback" not in out


def test_the_master_pings_systemds_watchdog_while_its_loop_turns(
    db_url: str, tmp_path: Path
) -> None:
    """Type=notify with WatchdogSec=: READY=1, then WATCHDOG=1 at half the period, sent by
    the master itself (NotifyAccess=main in deploy/statusapi.service ignores the others)."""
    path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    listener.settimeout(0.2)
    got: list[tuple[int, bytes]] = []

    def messages() -> list[tuple[int, bytes]]:
        try:
            data, anc, _, _ = listener.recvmsg(256, socket.CMSG_SPACE(12))
        except TimeoutError:
            return got
        pid = next(
            struct.unpack("3i", d)[0] for lvl, kind, d in anc if kind == socket.SCM_CREDENTIALS
        )
        got.append((pid, data))
        return got

    g = Gunicorn(db_url, tmp_path / "gunicorn.log", NOTIFY_SOCKET=path, WATCHDOG_USEC="600000")
    try:
        wait_for(
            lambda: sum(m == b"WATCHDOG=1" for _, m in messages()) >= 3,
            timeout=20,
            what="three watchdog pings",
        )
        assert got[0][1].startswith(b"READY=1")
        assert {pid for pid, _ in got} == {g.proc.pid}  # the master, no worker
    finally:
        assert g.stop() == 0
        listener.close()
    assert "systemd watchdog: the master pings every 0.3 s" in g.log_path.read_text()


def test_the_read_only_password_can_come_from_a_credential_passfile(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The recipe in deploy/statusapi.service: LoadCredential= puts a pgpass file in
    $CREDENTIALS_DIRECTORY (mode 0400, the service's user), Environment=PGPASSFILE=%d/...
    points libpq at it; the URL names the role and no password."""
    seed(db)
    url = db_url.replace("postgres@", "healthd_readonly@").split("?")[0]
    source = next(p for p in db_url.split("?")[1].split("&") if p.startswith("passfile="))
    password_line = Path(urllib.parse.unquote(source.split("=", 1)[1])).read_text()
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "pgpass").write_text(password_line)
    os.chmod(creds / "pgpass", 0o400)
    without = Gunicorn(url, tmp_path / "without.log", PGPASSFILE=str(tmp_path / "none"))
    try:
        assert get(without.base + "/api/v1/sources")[0] == 503  # no password, no connection
    finally:
        without.stop()
    g = Gunicorn(url, tmp_path / "gunicorn.log", PGPASSFILE=str(creds / "pgpass"))
    try:
        status, _, body = get(g.base + "/api/v1/sources")
        assert status == 200 and json.loads(body)["count"] > 0
    finally:
        assert g.stop() == 0
    password = password_line.strip().rsplit(":", 1)[1]
    for log in ("without.log", "gunicorn.log"):
        assert password not in (tmp_path / log).read_text()
