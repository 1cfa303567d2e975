"""The writer thread and its connection.

Every statement of the daemon runs on one thread with one blocking connection: a probe
loop saturated with hundreds of probes would otherwise delay each of a flush's round trips
by a full loop turn. When PostgreSQL is unreachable the connection is retried with backoff
(``Unavailable`` until then), and the outage is logged once each way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from healthd.errors import first_line

log = logging.getLogger("healthd.store")

T = TypeVar("T")
Conn = psycopg.Connection[dict[str, Any]]


class Unavailable(Exception):
    """The database is down and the reconnect backoff has not elapsed."""


class Writer:
    def __init__(self, url: str, setup: tuple[str, ...] = ()) -> None:
        self.url = url
        self._setup = setup  # run on every new connection (the session's temp tables)
        self._conn: Conn | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthd-db")
        self.down_since: float | None = None
        self.outages = 0  # times the database was lost (the daemon's metrics)
        self._retry_at = 0.0
        self._backoff = 0.5

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- writer thread only ------------------------------------------------------------
    def connection(self) -> Conn:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if time.monotonic() < self._retry_at:
            raise Unavailable()
        with self.outage_guard():
            self._conn = psycopg.connect(
                self.url, connect_timeout=5, row_factory=dict_row, application_name="healthd"
            )
            for sql in self._setup:
                self._conn.execute(sql)
            self._conn.commit()
        if self.down_since is not None:
            log.warning(
                "database reachable again after %.0f s; flushing the buffered results and events",
                time.monotonic() - self.down_since,
            )
            self.down_since = None
        self._backoff = 0.5
        return self._conn

    @contextlib.contextmanager
    def outage_guard(self) -> Iterator[None]:
        """An OperationalError (the server or the network went away) marks the database
        down, drops the connection and becomes Unavailable."""
        try:
            yield
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None

    def _failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            log.error(
                "database unreachable (%s); probing goes on, results are kept until it is back",
                first_line(exc),
            )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 30.0)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    def run_sync(self, sql: str, params: Any) -> list[dict[str, Any]]:
        conn = self.connection()
        with self.outage_guard(), conn.transaction():
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def _close_sync(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None

    # -- event loop ----------------------------------------------------------------------
    async def run(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; raises Unavailable when the database is down."""
        return await self.call(self.run_sync, sql, params)

    async def close(self) -> None:
        await self.call(self._close_sync)
        self._pool.shutdown(wait=True)
