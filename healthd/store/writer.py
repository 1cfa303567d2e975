"""The writer thread and its connection.

Every statement of the daemon runs on one thread with one blocking connection: a probe
loop saturated with hundreds of probes would otherwise delay each of a flush's round trips
by a full loop turn. When PostgreSQL is unreachable the connection is retried with backoff
(``Unavailable`` until then), and the outage is logged once each way.

Nothing may leave this connection in a bad state: any error on it discards it (the next
call reconnects), so no statement ever runs in an aborted transaction. Nothing may hang
on it either: TCP keepalives and ``tcp_user_timeout`` on both ends notice a dead peer,
``statement_timeout`` and ``idle_in_transaction_session_timeout`` bound what the server
does for it, and every call has a deadline after which its socket is shut down from the
event loop (a path that black-holes packets still ACKed by something in between is only
noticed that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from healthd.core.errors import first_line

log = logging.getLogger("healthd.store")

T = TypeVar("T")
Conn = psycopg.Connection[dict[str, Any]]

DB_TIMEOUT = 15.0  # default bound of one statement and of the network's silence, seconds
MAX_BACKOFF = 5.0  # default ceiling of the reconnect backoff; below the lease TTL


def _seen(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class Unavailable(Exception):
    """The database is down and the reconnect backoff has not elapsed."""


class Writer:
    def __init__(
        self,
        url: str,
        setup: tuple[str, ...] = (),
        timeout: float = DB_TIMEOUT,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.url = url
        self._setup = setup  # run on every new connection (the session's temp tables)
        self.timeout = timeout
        self.max_backoff = max_backoff
        self._conn: Conn | None = None
        self._lock = threading.Lock()  # guards _conn between the writer thread and abort()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthd-db")
        self.down_since: float | None = None
        self.outages = 0  # times the database was lost (the daemon's metrics)
        self._retry_at = 0.0
        self._backoff = 0.5
        self._down_what = ""
        self.identity: dict[str, str] | None = None  # which database this is (for the spool)
        # when a call last succeeded (the lease keeper renews only while writes land)
        self.landed_at = time.monotonic()

    async def call(self, fn: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """Run ``fn`` on the writer thread, for at most ``deadline`` seconds (default: a
        statement's bound plus a connect): past it the connection is shut down under it."""
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        # a call given up on (cut, or its waiter cancelled at stop) still ends in an
        # exception; mark it seen so asyncio does not log it as never retrieved
        fut.add_done_callback(_seen)
        limit = deadline if deadline is not None else self.timeout + 10.0
        try:
            out = await asyncio.wait_for(asyncio.shield(fut), limit)
            self.landed_at = time.monotonic()
            return out
        except TimeoutError:
            log.error("database call took longer than %.0f s: dropping the connection", limit)
            self.abort()
        try:
            # the shut-down socket fails the call at once; a thread stuck elsewhere is left
            return await asyncio.wait_for(asyncio.shield(fut), min(5.0, limit))
        except TimeoutError:
            raise Unavailable() from None

    def connect_kwargs(self) -> dict[str, Any]:
        return {"row_factory": dict_row, "application_name": "healthd", **self.tcp_kwargs()}

    def tcp_kwargs(self) -> dict[str, Any]:
        """libpq's side of the bounds: a silent server or path is noticed within ~timeout."""
        t = max(1, round(self.timeout))
        return {
            "connect_timeout": min(t, 10),
            "keepalives": 1,
            "keepalives_idle": max(1, t // 3),
            "keepalives_interval": max(1, t // 6),
            "keepalives_count": 3,
            "tcp_user_timeout": t * 1000,
        }

    def session_sql(self) -> tuple[str, ...]:
        """The server's side of the same bounds, for this session only."""
        ms, t = int(self.timeout * 1000), max(1, round(self.timeout))
        return (
            f"SET statement_timeout = {ms}",
            f"SET idle_in_transaction_session_timeout = {ms}",
            f"SET tcp_keepalives_idle = {max(1, t // 3)}",
            f"SET tcp_keepalives_interval = {max(1, t // 6)}",
            "SET tcp_keepalives_count = 3",
            f"SET tcp_user_timeout = {ms}",
        )

    # -- writer thread only ------------------------------------------------------------
    def connection(self) -> Conn:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if time.monotonic() < self._retry_at:
            raise Unavailable()
        try:
            conn = psycopg.connect(self.url, **self.connect_kwargs())
            with self._lock:
                self._conn = conn
            for sql in (*self.session_sql(), *self._setup):
                conn.execute(sql)
            conn.commit()
            row = self._identify(conn)
        except Exception as exc:  # noqa: BLE001 - a session we cannot set up is no session
            # e.g. a read-only server after a failover refuses CREATE TEMP TABLE: the
            # connection would sit in an aborted transaction; drop it and retry later
            if isinstance(exc, psycopg.OperationalError):
                self._failed(exc)
            else:
                self._failed(exc, "refusing this daemon's session")
            raise Unavailable() from None
        self.identity = dict(row) if row else None
        if self.down_since is not None:
            log.warning(
                "database reachable again after %.0f s; flushing the buffered results and events",
                time.monotonic() - self.down_since,
            )
            self.down_since = None
        self._backoff = 0.5
        return conn

    @staticmethod
    def _identify(conn: Conn) -> dict[str, Any] | None:
        """Which database this is, for the spool: the cluster's system identifier where the
        role may read it (a managed service may not allow it), else the name alone."""
        try:
            with conn.transaction():
                return conn.execute(
                    "SELECT system_identifier::text AS system, current_database() AS database"
                    " FROM pg_control_system()"
                ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            with conn.transaction():
                return conn.execute(
                    "SELECT '' AS system, current_database() AS database"
                ).fetchone()

    @contextlib.contextmanager
    def outage_guard(self) -> Iterator[None]:
        """Any error on the connection discards it. An OperationalError (the server or the
        network went away) also marks the database down and becomes Unavailable; others
        are raised for the caller to judge."""
        try:
            yield
        except psycopg.OperationalError as exc:
            self._failed(exc)
            raise Unavailable() from None
        except BaseException:
            self.discard()
            raise

    def refused(self, exc: BaseException) -> None:
        """The database refuses this daemon's statements (read-only, permissions, a timeout):
        like an outage, wait and retry, logged once."""
        self._failed(exc, "refusing this daemon's writes")

    def _failed(self, exc: BaseException, what: str = "unreachable") -> None:
        # logged once per outage, and again when it turns into another kind (a server
        # that went away comes back read-only)
        if self.down_since is None or what != self._down_what:
            if self.down_since is None:
                self.down_since = time.monotonic()
                self.outages += 1
            self._down_what = what
            from healthd.core import dburl

            if dburl.is_auth_failure(exc):  # no outage: say what it is
                what, exc = "refusing this daemon's login", Exception(dburl.describe(exc))
            log.error(
                "database %s (%s); probing goes on, results are kept until it is back",
                what,
                first_line(exc),
            )
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)
        self.discard()

    def discard(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def run_sync(self, sql: str, params: Any) -> list[dict[str, Any]]:
        conn = self.connection()
        with self.outage_guard(), conn.transaction():
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    # -- any thread ------------------------------------------------------------------------
    def abort(self) -> None:
        """Shut down the connection's socket, so a call blocked on it fails now. The fd is
        duplicated under the lock: the writer thread cannot close (and the number cannot
        be reused) in between."""
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed:
                return
            try:
                fd = conn.pgconn.socket
            except psycopg.Error:
                return
            try:
                sock = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
            except OSError:
                return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    # -- event loop ----------------------------------------------------------------------
    async def run(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; raises Unavailable when the database is down."""
        return await self.call(self.run_sync, sql, params)

    async def close(self, deadline: float = 5.0) -> None:
        """Close within ``deadline`` seconds: a call still stuck on the connection is cut."""
        with contextlib.suppress(Unavailable):
            await self.call(self.discard, deadline=deadline)
        self._pool.shutdown(wait=False)
