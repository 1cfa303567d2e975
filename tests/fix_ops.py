"""Helpers of the operations tests (dependencies, maintenance, retention, webhook
routing): sources on local targets, receivers that check what they are sent, the
read-only API on the test database, history queries."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from flask.testing import FlaskClient

from tests.fix_api import readonly_app
from tests.fix_db import add_http
from tests.fix_servers import Answer, Request, Scripted

FAST = {"HEALTHD_RISE": "1", "HEALTHD_FALL": "1", "HEALTHD_INTERVAL": "0.5"}


def add_source(
    db: psycopg.Connection[Any], sid: str, url: str, depends_on: tuple[str, ...] = ()
) -> None:
    """An http source named in capitals, with its parents."""
    add_http(db, sid, url, name=sid.upper(), depends_on=list(depends_on))


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


class Receiver(Scripted):
    """A webhook receiver on 127.0.0.1: records every POST; ``check(body, headers)``
    returns the status to answer (200 by default), so a receiver can enforce a shape."""

    def __init__(self, check: Callable[[bytes, dict[str, str]], int] | None = None) -> None:
        self.status = 200
        self.check = check
        super().__init__(self._answer)
        self.posts = self.requests
        self.url = f"{self.base}/hook/secret-path"

    def _answer(self, req: Request) -> Answer:
        code = self.check(req.body, req.headers) if self.check else self.status
        with self.lock:
            code = self.status if self.status != 200 else code
        return code, {}, b"ok" if code == 200 else b"invalid_payload"

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p["body"]) for p in self.posts]


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
    with readonly_app(db_url) as app:
        yield app.test_client()


def one_line_error(result: Any, *needles: str) -> None:
    """A CLI failure: exit 1, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthd: "), result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
