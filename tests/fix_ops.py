"""Helpers of the operations tests (dependencies, maintenance, retention, webhook
routing): sources on local targets, receivers that check what they are sent, the
read-only API on the test database, history queries."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from flask.testing import FlaskClient

from statusapi import create_app

FAST = {"HEALTHD_RISE": "1", "HEALTHD_FALL": "1", "HEALTHD_INTERVAL": "0.5"}


def add_source(
    db: psycopg.Connection[Any], sid: str, url: str, depends_on: tuple[str, ...] = ()
) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config, depends_on)"
        " VALUES (%s, %s, 'http', %s, %s)",
        (sid, sid.upper(), json.dumps({"url": url}), list(depends_on)),
    )


def status_of(db: psycopg.Connection[Any], sid: str) -> str:
    row = db.execute("SELECT connection_status FROM data_sources WHERE id = %s", (sid,)).fetchone()
    return str(row[0]) if row else ""


def transitions(db: psycopg.Connection[Any], sid: str) -> list[tuple[Any, ...]]:
    """(from, to, maintenance, suppressed_by, webhook outbox rows) per transition, oldest first."""
    return db.execute(
        "SELECT h.from_status, h.to_status, h.maintenance, h.suppressed_by,"
        " (SELECT count(*) FROM webhook_outbox o WHERE o.history_id = h.id)"
        " FROM status_history h WHERE h.source_id = %s AND h.event = 'transition' ORDER BY h.id",
        (sid,),
    ).fetchall()


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; ``check(body, headers)``
    returns the status to answer (200 by default), so a receiver can enforce a shape."""

    def __init__(self, check: Callable[[bytes, dict[str, str]], int] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                code = check(body, headers) if check else me.status
                with me.lock:
                    me.posts.append({"path": self.path, "headers": headers, "body": body})
                    code = me.status if me.status != 200 else code
                reply = b"ok" if code == 200 else b"invalid_payload"
                self.send_response(code)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p["body"]) for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def receiver(check: Callable[[bytes, dict[str, str]], int] | None = None) -> Iterator[Receiver]:
    r = Receiver(check)
    try:
        yield r
    finally:
        r.close()


@contextlib.contextmanager
def api(db_url: str) -> Iterator[FlaskClient]:
    """The API as the read-only role sees the test database."""
    app = create_app({"DATABASE_URL": db_url.replace("postgres@", "healthd_readonly@")})
    try:
        yield app.test_client()
    finally:
        pool = app.extensions.get("healthd_pool")
        if pool is not None:
            pool.close()


def one_line_error(result: Any, *needles: str) -> None:
    """A CLI failure: exit 1, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthd: "), result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
