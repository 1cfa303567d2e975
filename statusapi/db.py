"""The connection pool: one per worker process, created on first use (after gunicorn
forks), every session read-only so the API works with the read-only role and against a
hot standby."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask, current_app
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from statusapi.errors import ApiError

_lock = threading.Lock()


def init_app(app: Flask) -> None:
    app.extensions["healthd_pool"] = None


def get_pool() -> ConnectionPool:
    app = current_app
    pool: ConnectionPool | None = app.extensions.get("healthd_pool")
    if pool is None:
        with _lock:
            pool = app.extensions.get("healthd_pool")
            if pool is None:
                url = app.config["DATABASE_URL"]
                if not url:
                    raise ApiError(503, "not_configured",
                                   "no database configured (STATUSAPI_DATABASE_URL / HEALTHD_DATABASE_URL)")
                pool = ConnectionPool(
                    url, min_size=1, max_size=app.config["POOL_MAX"], timeout=2.0, open=False,
                    check=ConnectionPool.check_connection, reconnect_timeout=0,
                    kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 2,
                            "application_name": "statusapi",
                            "options": "-c default_transaction_read_only=on -c statement_timeout=5000"},
                )
                pool.open(wait=False)
                app.extensions["healthd_pool"] = pool
    return pool


@contextmanager
def connection() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A pooled connection; an unreachable database becomes a 503 with Retry-After."""
    try:
        with get_pool().connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError):
        raise ApiError(503, "database_unavailable", "the database is unreachable; try again shortly",
                       headers={"Retry-After": "5"}) from None


def fetch_all(sql: str, params: Any = None) -> list[dict[str, Any]]:
    with connection() as conn:
        return conn.execute(sql, params).fetchall()


def fetch_one(sql: str, params: Any = None) -> dict[str, Any] | None:
    with connection() as conn:
        return conn.execute(sql, params).fetchone()
