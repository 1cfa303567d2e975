"""The connection pool: one per worker process, created on first use (after gunicorn
forks), every session read-only so the API works with the read-only role and against a
hot standby."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Literal, overload

import psycopg
from flask import Flask, current_app
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from healthd.core import dburl
from healthd.core.errors import ConfigError
from statusapi.web.errors import ApiError

_lock = threading.Lock()
POOL_WAIT = 2.0  # seconds a request waits for a pooled connection before a 503
AUTH_LOOK = 0.05  # while waiting, how often to look whether the credentials were refused
log = logging.getLogger(__name__)


class Outage:
    """One line when the database goes and one when it is back, per worker process (as the
    daemon does), instead of a warning per connection attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None

    def failed(self, reason: str) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.error(
            "statusapi worker %d: database unreachable (%s); answering 503 until it is back",
            os.getpid(),
            reason,
        )

    def ok(self) -> None:
        if self.since is None:  # the common case, without taking the lock
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning(
                "statusapi worker %d: database reachable again after %.0f s",
                os.getpid(),
                time.monotonic() - since,
            )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def init_app(app: Flask) -> None:
    app.extensions["healthd_pool"] = None
    app.extensions["healthd_db_outage"] = Outage()
    # psycopg_pool warns on every failed connection attempt (several a second while the
    # database is away, each with a multi-line message); Outage says it once each way
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def get_pool() -> ConnectionPool:
    app = current_app
    pool: ConnectionPool | None = app.extensions.get("healthd_pool")
    if pool is None:
        with _lock:
            pool = app.extensions.get("healthd_pool")
            if pool is None:
                url = app.config["DATABASE_URL"]
                if not url:
                    raise ApiError(
                        503,
                        "not_configured",
                        "no database configured (STATUSAPI_DATABASE_URL / HEALTHD_DATABASE_URL)",
                    )
                try:
                    conninfo = dburl.check(url, "STATUSAPI_DATABASE_URL")
                except ConfigError as exc:
                    raise ApiError(503, "not_configured", str(exc)) from None
                attempts = app.extensions["healthd_pool_attempts"] = _Attempts()
                pool = ConnectionPool(
                    conninfo,
                    connection_class=_recording(attempts),
                    min_size=1,
                    max_size=app.config["POOL_MAX"],
                    timeout=POOL_WAIT,
                    open=False,
                    reconnect_timeout=0,
                    kwargs={
                        "autocommit": True,
                        "row_factory": dict_row,
                        "connect_timeout": 2,
                        "application_name": "statusapi",
                        "options": "-c default_transaction_read_only=on -c statement_timeout=5000"
                        " -c timezone=UTC",
                    },
                )
                pool.open(wait=False)
                app.extensions["healthd_pool"] = pool
    return pool


class _Attempts:
    """When the pool's newest connection attempt was refused for its credentials: a wrong
    password is no outage, and waiting out the pool's timeout would only hide it."""

    def __init__(self) -> None:
        self.auth_failed_at = 0.0
        self.detail = ""
        self.ever_connected = False

    def failed(self, exc: BaseException) -> None:
        if dburl.is_auth_failure(exc):
            self.detail = dburl.auth_detail(exc)
            self.auth_failed_at = time.monotonic()

    def succeeded(self) -> None:
        self.auth_failed_at = 0.0
        self.ever_connected = True


def _recording(attempts: _Attempts) -> type[psycopg.Connection[Any]]:
    """A connection class for one pool that tells ``attempts`` how each connect went."""

    class RecordingConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                attempts.failed(exc)
                raise
            attempts.succeeded()
            return conn

    return RecordingConnection


class CredentialsRefused(ApiError):
    """503: the database refused the API's user or password (no outage: say so, at once)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            503,
            "database_auth_failed",
            f"the database refused the API's credentials ({detail}); check STATUSAPI_DATABASE_URL",
            headers={"Retry-After": "30"},
        )
        self.detail = detail


def _checkout(pool: ConnectionPool, attempts: _Attempts) -> Any:
    """A pooled connection within the pool's timeout; an authentication failure of a
    connection attempt made meanwhile ends the wait at once (503 saying so)."""
    if attempts.ever_connected and not attempts.auth_failed_at:
        # the usual case, the credentials known good: one wait in the pool's fair queue
        return pool.getconn()
    started = time.monotonic()
    deadline = started + POOL_WAIT
    while True:
        try:
            return pool.getconn(timeout=min(AUTH_LOOK, max(deadline - time.monotonic(), 0.001)))
        except PoolTimeout:
            if attempts.auth_failed_at >= started:
                raise CredentialsRefused(attempts.detail) from None
            if time.monotonic() >= deadline:
                raise


def _query(sql: str, params: Any, one: bool, tuples: bool, binary: bool = False) -> Any:
    # A pooled connection can be dead without the pool knowing (the database restarted
    # since it was last used). Checking every connection on checkout would cost a round
    # trip per request; instead a query that fails on a broken connection is retried once
    # on a fresh one (the pool discards the broken one), and only then becomes a 503.
    outage: Outage = current_app.extensions["healthd_db_outage"]
    reason = ""
    for attempt in (1, 2):
        try:
            pool = get_pool()
            conn = _checkout(pool, current_app.extensions["healthd_pool_attempts"])
            try:
                with conn:  # as pool.connection() does: the pool keeps it, unless broken
                    cur = conn.cursor(row_factory=tuple_row) if tuples else conn.cursor()
                    cur.execute(sql, params, binary=binary)
                    rows = cur.fetchone() if one else cur.fetchall()
            finally:
                pool.putconn(conn)
            outage.ok()
            return rows
        except CredentialsRefused as exc:
            outage.failed(f"authentication failed: {exc.detail}")
            raise
        except psycopg.OperationalError as exc:
            reason = _first_line(exc)
            if attempt == 2:
                break
        except PoolTimeout:
            reason = "no connection could be made in time"
            break
    outage.failed(reason)
    raise ApiError(
        503,
        "database_unavailable",
        "the database is unreachable; try again shortly",
        headers={"Retry-After": "5"},
    )


def fetch_all(sql: str, params: Any = None, tuples: bool = False) -> list[Any]:
    return _query(sql, params, one=False, tuples=tuples)  # type: ignore[no-any-return]


@overload
def fetch_one(
    sql: str, params: Any = None, tuples: Literal[False] = False
) -> dict[str, Any] | None: ...
@overload
def fetch_one(sql: str, params: Any, tuples: Literal[True]) -> tuple[Any, ...] | None: ...
@overload
def fetch_one(sql: str, params: Any = None, *, tuples: Literal[True]) -> tuple[Any, ...] | None: ...


def fetch_one(sql: str, params: Any = None, tuples: bool = False) -> Any:
    return _query(sql, params, one=True, tuples=tuples)


def fetch_one_binary(sql: str, params: Any = None) -> tuple[Any, ...] | None:
    """One row as a tuple, sent in PostgreSQL's binary format: an array of 10,000 numbers
    parses in a fraction of the time its text form takes (uptime's transition times)."""
    row: tuple[Any, ...] | None = _query(sql, params, one=True, tuples=True, binary=True)
    return row
