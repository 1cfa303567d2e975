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

from statusapi.errors import ApiError

_lock = threading.Lock()
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
                pool = ConnectionPool(
                    url,
                    min_size=1,
                    max_size=app.config["POOL_MAX"],
                    timeout=2.0,
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


def _query(sql: str, params: Any, one: bool, tuples: bool, binary: bool = False) -> Any:
    # A pooled connection can be dead without the pool knowing (the database restarted
    # since it was last used). Checking every connection on checkout would cost a round
    # trip per request; instead a query that fails on a broken connection is retried once
    # on a fresh one (the pool discards the broken one), and only then becomes a 503.
    outage: Outage = current_app.extensions["healthd_db_outage"]
    reason = ""
    for attempt in (1, 2):
        try:
            with get_pool().connection() as conn:
                cur = conn.cursor(row_factory=tuple_row) if tuples else conn.cursor()
                cur.execute(sql, params, binary=binary)
                rows = cur.fetchone() if one else cur.fetchall()
            outage.ok()
            return rows
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
