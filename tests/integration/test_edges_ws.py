"""The streams' edges (issue 23) against real processes: a probed target's words carried
exactly by the WebSocket and the SSE stream, a client that floods the WebSocket, clients
that close normally, and an empty STATUSAPI_TOKENS, all under a real gunicorn."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from tests.fix_api import WsClient, ws_frames
from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Request as HttpRequest
from tests.fix_servers import Scripted, json_answer

pytestmark = pytest.mark.slow

# Unicode line breaks that str.splitlines() (and other "any line break" readers) split on,
# which JSON allows raw inside a string and orjson leaves raw
BREAKS = "\u2028\u2029\u0085"


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


# -- 1: frames carry the event, whatever characters its message holds -------------------


class FakeAI(Scripted):
    """An OpenAI-compatible /v1/models per path prefix: failing (HTTP 500) with
    a chosen ``error.message`` until ``healthy`` is set, then listing one model."""

    def __init__(self, messages: dict[str, str]) -> None:
        self.messages = messages
        self.healthy = False
        super().__init__(self._answer)

    def _answer(self, req: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        prefix = req.path.split("/")[1]
        if self.healthy:
            return json_answer(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        return json_answer(500, {"error": {"message": self.messages[prefix]}})


def read_sse(port: int, after: int, n: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /api/v1/stream?after={after} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while buf.count(b"\nevent: ") < n:
            chunk = s.recv(65536)
            assert chunk, "stream closed early"
            buf += chunk
    return buf.decode().partition("\r\n\r\n")[2]


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an SSE text the way the HTML standard's parser reads them: lines end
    at CR, LF or CRLF only; a blank line dispatches."""
    events, fields = [], {}
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if "data" in fields:
                events.append(
                    {
                        "id": int(fields["id"]),
                        "event": fields["event"],
                        "data": json.loads(fields["data"]),
                    }
                )
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
    return events


def test_target_words_with_unicode_line_breaks_reach_every_client_exactly(
    gunicorn_1w: Gunicorn,
    db: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
    healthd_cli: Any,
) -> None:
    messages = {
        "a": "bad key\u2028id: oops\u2029event: x\u0085data: {}",
        "b": "bad key\u2028id: 999999999\u2028x",
    }
    fake = FakeAI(messages)
    live = WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws")
    daemon = None
    try:
        for sid in messages:
            cfg = json.dumps({"endpoint": f"{fake.base}/{sid}/v1", "api_key": "k"})
            add = healthd_cli("sources", "add", sid, "--plugin", "ai-service", "--config", cfg)
            assert add.returncode == 0, add.stderr
        daemon = DaemonProcess(db_url, tmp_path / "d.log", HEALTHD_RISE="1")

        def history() -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT id, source_id, to_status, error_message FROM status_history ORDER BY id"
            ).fetchall()

        wait_for(lambda: len(history()) == 2, what="the two refusals")
        fake.healthy = True
        wait_for(lambda: len(history()) == 4, what="the two recoveries")
        rows = history()
        # the daemon stored the target's words as they came, line breaks and all
        for sid, text in messages.items():
            stored = next(r[3] for r in rows if r[1] == sid and r[2] == "error")
            assert text in stored, (sid, stored)
        truth = get_json(gunicorn_1w.port, "/api/v1/events?after=0")["events"]
        want = [{"id": e["id"], "event": "status", "data": e} for e in truth]
        assert [w["id"] for w in want] == [r[0] for r in rows]

        assert ws_frames(live, 4) == want  # live, through the broadcaster
        for after, expect in ((0, want), (want[0]["id"], want[1:]), (want[1]["id"], want[2:])):
            resumed = WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws?after={after}")
            try:
                assert ws_frames(resumed, len(expect)) == expect, after
            finally:
                resumed.close()

        text = read_sse(gunicorn_1w.port, 0, 4)
        assert parse_sse(text) == want
        # and a reader that splits lines on any Unicode line break reads the same events
        # (Python's str.splitlines, the parser our own WebSocket used): none is left raw
        assert not any(c in text for c in BREAKS), "a raw Unicode line break in the stream"
    finally:
        live.close()
        if daemon is not None:
            daemon.stop()
        fake.close()
    assert "Traceback" not in gunicorn_1w.log_path.read_text()


# -- 4: a client that floods the WebSocket ------------------------------------------------


def worker_pid(g: Gunicorn) -> int:
    def only_child() -> int | None:
        path = Path(f"/proc/{g.proc.pid}/task/{g.proc.pid}/children")
        kids = path.read_text().split()
        return int(kids[0]) if len(kids) == 1 else None

    pid = wait_for(only_child, what="gunicorn's worker")
    assert isinstance(pid, int)
    return pid


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class RawClient:
    """A WebSocket client on wsproto that can send pre-built frames as fast as the socket
    takes them, while a thread reads what the server says (its close code)."""

    def __init__(self, port: int, path: str = "/api/v1/ws") -> None:
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(self.conn.send(Request(host="127.0.0.1", target=path)))
        self.close_code: int | None = None
        self.pongs = 0
        self.texts: list[str] = []
        self.eof = threading.Event()
        accepted = False
        while not accepted:
            data = self.sock.recv(65536)
            assert data, "closed during the handshake"
            self.conn.receive_data(data)
            accepted = any(isinstance(e, AcceptConnection) for e in self.conn.events())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.eof.set()
                return
            self.conn.receive_data(data)
            for e in self.conn.events():
                if isinstance(e, CloseConnection) and self.close_code is None:
                    self.close_code = e.code
                elif isinstance(e, Pong):
                    self.pongs += 1
                elif isinstance(e, TextMessage):
                    self.texts.append(e.data)

    def frame(self, text: str) -> bytes:
        return self.conn.send(TextMessage(data=text))

    def close(self) -> None:
        # shutdown first: a close() alone sends no FIN while our reader is inside recv()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_a_flooding_client_is_closed_and_the_worker_stays_small(
    gunicorn_1w: Gunicorn, db: psycopg.Connection[Any]
) -> None:
    good = WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws")
    flooder = RawClient(gunicorn_1w.port)
    try:
        pid = worker_pid(gunicorn_1w)
        before = rss_mib(pid)
        blob = flooder.frame("x" * 4000) * 256  # 1 MiB of small, valid messages
        flooder.sock.settimeout(0.5)
        sent, deadline = 0, time.monotonic() + 5
        while sent < 96 << 20 and time.monotonic() < deadline and not flooder.eof.is_set():
            try:
                flooder.sock.sendall(blob)
                sent += len(blob)
            except TimeoutError:
                continue  # the server reads slower than we write: keep pushing
            except OSError:
                break  # the server closed on us
        grown = rss_mib(pid) - before
        said = f"the worker grew {grown:.0f} MiB ({sent >> 20} MiB sent)"
        assert grown < 16, said
        wait_for(flooder.eof.is_set, timeout=5, what="the server to close the flooder")
        assert flooder.close_code in (1008, 1009), (flooder.close_code, said)
        # one message over the limit is closed at once, as too big
        big = RawClient(gunicorn_1w.port)
        try:
            big.sock.sendall(big.frame("y" * 65536))
            wait_for(big.eof.is_set, timeout=5, what="the server to close the big sender")
            assert big.close_code == 1009
        finally:
            big.close()
        # a client that pings now and then and says a few words is kept, and answered
        chatty = RawClient(gunicorn_1w.port)
        try:
            for i in range(8):
                chatty.sock.sendall(chatty.conn.send(Ping(payload=b"%d" % i)))
                chatty.sock.sendall(chatty.frame("hello"))
            wait_for(lambda: chatty.pongs >= 8, timeout=5, what="the pongs")
            # the well-behaved clients on the same worker are still served
            row = db.execute(
                "INSERT INTO status_history (source_id, from_status, to_status)"
                " VALUES ('web', 'unknown', 'connected') RETURNING id"
            ).fetchone()
            assert row is not None
            assert ws_frames(good, 1)[0]["id"] == row[0]
            wait_for(lambda: chatty.texts, timeout=5, what="the event on the chatty client")
            assert json.loads(chatty.texts[0])["id"] == row[0]
            assert chatty.close_code is None and not chatty.eof.is_set()
        finally:
            chatty.close()
    finally:
        flooder.close()
        good.close()


# -- 12: a normal close is not an error ---------------------------------------------------


def ws_requests(port: int) -> dict[str, float]:
    """statusapi_requests_total for /api/v1/ws, by code."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("statusapi_requests_total{") and 'route="/api/v1/ws"' in line:
            code = re.search(r'code="([^"]+)"', line)
            assert code is not None
            out[code[1]] = out.get(code[1], 0) + float(line.rsplit(" ", 1)[1])
    return out


def test_clients_that_close_normally_are_no_error(gunicorn_1w: Gunicorn) -> None:
    for _ in range(3):  # simple-websocket's client: a close frame, then its socket shut
        WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws").close()
    # a client that waits for the server's answer to its close, as browsers do
    polite = RawClient(gunicorn_1w.port)
    try:
        polite.sock.sendall(polite.conn.send(CloseConnection(code=1000, reason="bye")))
        wait_for(polite.eof.is_set, timeout=5, what="the server to end the connection")
        assert polite.close_code == 1000
    finally:
        polite.close()
    counts = wait_for(
        lambda: (c := ws_requests(gunicorn_1w.port)) and sum(c.values()) >= 4 and c,
        what="the four WebSocket requests in /metrics",
    )
    assert counts == {"200": 4}, counts
    log = gunicorn_1w.log_path.read_text()
    assert "Traceback" not in log and "Error handling request" not in log, log


# -- 13: STATUSAPI_TOKENS set but holding no token ------------------------------------------


@pytest.mark.parametrize("raw", [" ", ",", " , ,", ""])
def test_empty_tokens_stop_gunicorn_in_one_line(db_url: str, raw: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STATUSAPI_DATABASE_URL": db_url,
        "STATUSAPI_WORKERS": "1",
        "STATUSAPI_TOKENS": raw,
    }
    log = tmp_path / "g.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(Gunicorn.CONF), "-b", "127.0.0.1:0"]
            + ["statusapi:create_app()"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # it stops, or it serves (a worker booted: it took the empty list for "no auth")
        wait_for(
            lambda: proc.poll() is not None or "Booting worker" in log.read_text(),
            what="gunicorn to stop or serve",
        )
        text = log.read_text()
        assert proc.poll() is not None, "gunicorn serves with no token required: " + text
        assert proc.returncode != 0, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("STATUSAPI_TOKENS: "), text


# -- the handshake is checked before the upgrade, and answered in JSON ----------------------


@pytest.mark.parametrize(
    ("extra", "status", "needle"),
    [
        (
            b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            426,
            b"13",
        ),
        (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n", 400, b"Key"),
        (b"Sec-WebSocket-Version: 13\r\n", 400, b"Key"),
    ],
)
def test_a_wrong_handshake_is_json_before_the_upgrade(
    gunicorn_1w: Gunicorn, extra: bytes, status: int, needle: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn_1w.port), timeout=10) as s:
        s.sendall(
            b"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n" + extra + b"\r\n"
        )
        buf = b""
        while b"}}" not in buf:
            chunk = s.recv(4096)
            assert chunk, buf
            buf += chunk
    assert buf.startswith(b"HTTP/1.1 %d" % status), buf
    assert b"application/json" in buf and needle in buf.partition(b"\r\n\r\n")[2], buf


def test_the_test_client_reads_frames_that_came_with_the_handshake() -> None:
    """The tests' WebSocket client (tests/fix_api.py WsClient): a server that sends its 101
    and a frame in one write, as a ?after= replay does on a busy machine. simple-websocket's
    own client leaves that frame unread until more bytes come (one CI run waited 10 s for
    a replay that was already in its buffer)."""
    from simple_websocket import Client  # type: ignore[import-untyped]

    srv = socket.create_server(("127.0.0.1", 0))
    read = threading.Event()  # the client has had its chance: the server may hang up

    def serve_one() -> None:
        conn, _ = srv.accept()
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            ws.receive_data(conn.recv(65536))
            if any(isinstance(e, Request) for e in ws.events()):
                break
        conn.sendall(ws.send(AcceptConnection()) + ws.send(TextMessage('{"id":1}')))
        read.wait(5)
        conn.close()

    try:
        got = []
        for cls in (Client, WsClient):
            t = threading.Thread(target=serve_one, daemon=True)
            t.start()
            c = cls.connect(f"ws://127.0.0.1:{srv.getsockname()[1]}/")
            got.append(c.receive(timeout=1))
            c.close()  # before the server hangs up: a closed socket cannot say goodbye
            read.set()
            t.join()
            read.clear()
        assert got == [None, '{"id":1}']
    finally:
        srv.close()
