"""GET /api/v1/ws and the SSE stream's ?after=, under a real gunicorn (gthread workers)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg

from tests.fix_api import WsClient, ws_frames
from tests.fix_procs import Gunicorn


def add_event(db: psycopg.Connection[Any], sid: str, frm: str, to: str) -> int:
    row = db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status) VALUES (%s,%s,%s)"
        " RETURNING id",
        (sid, frm, to),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_ws_replays_after_id_then_follows(
    gunicorn_1w: Gunicorn, db: psycopg.Connection[Any]
) -> None:
    ids = [add_event(db, "web", "unknown", "connected"), add_event(db, "web", "connected", "error")]
    ids.append(add_event(db, "db", "unknown", "error"))
    ws = WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws?after={ids[0]}")
    try:
        got = ws_frames(ws, 2)
        assert [f["id"] for f in got] == ids[1:]
        assert got[0]["event"] == "status"
        assert got[0]["data"]["source_id"] == "web" and got[0]["data"]["to"] == "error"
        assert got[0]["data"]["id"] == ids[1]
        new = add_event(db, "db", "error", "connected")  # live, through the broadcaster
        (live,) = ws_frames(ws, 1)
        assert live["id"] == new and live["data"]["to"] == "connected"
    finally:
        ws.close()


def test_ws_without_after_starts_at_the_head(
    gunicorn_1w: Gunicorn, db: psycopg.Connection[Any]
) -> None:
    add_event(db, "web", "unknown", "connected")
    ws = WsClient.connect(f"ws://127.0.0.1:{gunicorn_1w.port}/api/v1/ws")
    try:
        assert ws.receive(timeout=0.5) is None  # nothing old is replayed
        new = add_event(db, "web", "connected", "error")
        assert ws_frames(ws, 1)[0]["id"] == new
    finally:
        ws.close()


def test_ws_bad_after_is_a_json_400(gunicorn_1w: Gunicorn) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn_1w.port), timeout=5) as s:
        s.sendall(
            b"GET /api/v1/ws?after=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        buf = b""
        while b"}}" not in buf:
            chunk = s.recv(4096)
            assert chunk, "closed before the body"
            buf += chunk
    head = buf.decode()
    assert head.startswith("HTTP/1.1 400") and "bad_parameter" in head


def test_sse_after_query_parameter(gunicorn_1w: Gunicorn, db: psycopg.Connection[Any]) -> None:
    ids = [add_event(db, "web", "unknown", "connected") for _ in range(3)]
    with socket.create_connection(("127.0.0.1", gunicorn_1w.port), timeout=10) as s:
        s.sendall(f"GET /api/v1/stream?after={ids[0]} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while buf.count(b"event: status") < 2:
            chunk = s.recv(65536)
            assert chunk, "stream closed early"
            buf += chunk
    text = buf.decode()
    assert f"id: {ids[0]}\n" not in text
    assert f"id: {ids[1]}\n" in text and f"id: {ids[2]}\n" in text


def test_page_under_a_path_prefix(db_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> None:
    """Behind a reverse proxy at /sp/ (gunicorn's SCRIPT_NAME): every link follows."""
    db.execute("INSERT INTO data_sources (id, name, plugin) VALUES ('web', 'Web', 'http')")
    g = Gunicorn(db_url, tmp_path / "prefix.log", workers=1, SCRIPT_NAME="/sp")
    try:
        with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
            s.sendall(b"GET /sp/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            buf = b""
            while chunk := s.recv(65536):
                buf += chunk
        html = buf.decode()
        assert html.startswith("HTTP/1.1 200")
        assert 'href="/sp/static/status.css?v=' in html and 'src="/sp/static/status.js?v=' in html
        assert 'data-stream="/sp/api/v1/stream"' in html and 'href="/sp/status/web"' in html
    finally:
        g.stop()
