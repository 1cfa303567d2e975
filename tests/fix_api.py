"""statusapi fixtures, the Flask tutorial's way: ``app`` (on this test's database, seeded,
read through the read-only role) and its test ``client``; ``seed`` and ``heartbeat`` for
tests that run the API under gunicorn."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from simple_websocket import Client  # type: ignore[import-untyped]

from statusapi import create_app

SECRET = "sk-top-secret-777"


def seed(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    rows = [
        (
            "ai-connection",
            "AI",
            "ai",
            "ai-service",
            {"endpoint": "http://127.0.0.1:9/v1", "api_key": SECRET},
            "connected",
            "success",
            None,
        ),
        (
            "web",
            "Web",
            "service",
            "http",
            {
                "url": f"https://user:{SECRET}@127.0.0.1/?token={SECRET}",
                "headers": {"Authorization": f"Bearer {SECRET}"},
            },
            "error",
            "failed",
            "HTTP 500",
        ),
        (
            "db",
            "DB",
            "database",
            "postgres",
            {"dsn": {"env": "PG_DSN"}},
            "disconnected",
            "failed",
            "connection refused",
        ),
        (
            "new",
            "New",
            "service",
            "tcp",
            {"host": "127.0.0.1", "port": 1, "password": SECRET},
            "unknown",
            None,
            None,
        ),
    ]
    for sid, name, typ, plugin, cfg, status, test, msg in rows:
        db.execute(
            "INSERT INTO data_sources (id, name, type, plugin, config, connection_status, test_status,"
            " test_error_message, last_tested_at, status_changed_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                sid,
                name,
                typ,
                plugin,
                json.dumps(cfg),
                status,
                test,
                msg,
                now if test else None,
                now if test else None,
            ),
        )
    db.execute(
        "UPDATE data_sources SET pending_status='connected', pending_count=1, flapping=true WHERE id='web'"
    )
    for i, (sid, frm, to) in enumerate(
        [
            ("web", "unknown", "connected"),
            ("db", "unknown", "disconnected"),
            ("web", "connected", "error"),
        ]
    ):
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at, error_message) VALUES"
            " (%s, %s, %s, %s, %s)",
            (sid, frm, to, now + timedelta(seconds=i), None),
        )


@contextlib.contextmanager
def readonly_app(db_url: str, **config: Any) -> Iterator[Flask]:
    """The API as the read-only role sees the test database; its pool is closed after."""
    ro = db_url.replace("postgres@", "healthd_readonly@")
    app = create_app({"DATABASE_URL": ro, "TESTING": True, **config})
    try:
        yield app
    finally:
        pool = app.extensions.get("healthd_pool")
        if pool is not None:
            pool.close()


@pytest.fixture
def app(db_url: str, db: psycopg.Connection[Any]) -> Iterator[Flask]:
    seed(db)
    with readonly_app(db_url) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def heartbeat(db: psycopg.Connection[Any], age_s: float = 0) -> None:
    db.execute(
        "INSERT INTO daemon_nodes (node_id, hostname, pid, heartbeat_at) VALUES"
        " ('n1', 'h', 1, now() - make_interval(secs => %s))",
        (age_s,),
    )


def ws_frames(ws: Any, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``n`` WebSocket frames of a simple-websocket client, as JSON."""
    out = []
    for _ in range(n):
        raw = ws.receive(timeout=timeout)
        assert raw is not None, f"no frame within {timeout} s (got {len(out)} of {n})"
        out.append(json.loads(raw))
    return out


class WsClient(Client):  # type: ignore[misc]
    """simple-websocket's client without its handshake race: frames that arrive in the same
    read as the server's 101 were left unparsed until more bytes came, so a ?after= replay
    the server sent at once sat in the client until the server's next ping (25 s). The
    handshake runs before the client's reader thread starts, so this is race-free."""

    def handshake(self) -> None:
        super().handshake()
        self.connected = self._handle_events()
