"""The streams' edges (issue 23) against real processes: a probed target's words carried
exactly by the WebSocket and the SSE stream, a client that floods the WebSocket, clients
that close normally, and an empty STATUSAPI_TOKENS, all under a real gunicorn."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from simple_websocket import Client  # type: ignore[import-untyped]

from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Request as HttpRequest
from tests.fix_servers import Scripted, json_answer

pytestmark = pytest.mark.slow

# Unicode line breaks that str.splitlines() (and other "any line break" readers) split on,
# which JSON allows raw inside a string and orjson leaves raw
BREAKS = "\u2028\u2029\u0085"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    g = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1, STATUSAPI_THREADS="8")
    yield g
    g.stop()


def receive(ws: Any, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        raw = ws.receive(timeout=timeout)
        assert raw is not None, f"no frame within {timeout} s (got {len(out)} of {n})"
        out.append(json.loads(raw))
    return out


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
    api: Gunicorn,
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
    live = Client.connect(f"ws://127.0.0.1:{api.port}/api/v1/ws")
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
        truth = get_json(api.port, "/api/v1/events?after=0")["events"]
        want = [{"id": e["id"], "event": "status", "data": e} for e in truth]
        assert [w["id"] for w in want] == [r[0] for r in rows]

        assert receive(live, 4) == want  # live, through the broadcaster
        for after, expect in ((0, want), (want[0]["id"], want[1:]), (want[1]["id"], want[2:])):
            resumed = Client.connect(f"ws://127.0.0.1:{api.port}/api/v1/ws?after={after}")
            try:
                assert receive(resumed, len(expect)) == expect, after
            finally:
                resumed.close()

        text = read_sse(api.port, 0, 4)
        assert parse_sse(text) == want
        # and a reader that splits lines on any Unicode line break reads the same events
        # (Python's str.splitlines, the parser our own WebSocket used): none is left raw
        assert not any(c in text for c in BREAKS), "a raw Unicode line break in the stream"
    finally:
        live.close()
        if daemon is not None:
            daemon.stop()
        fake.close()
    assert "Traceback" not in api.log_path.read_text()


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
