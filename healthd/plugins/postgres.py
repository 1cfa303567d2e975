"""PostgreSQL: a query over a connection kept between probes, reconnected when broken."""

from __future__ import annotations

import time

import psycopg

from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms


class PostgresPlugin(Plugin):
    name = "postgres"
    description = "PostgreSQL: runs a query on a kept connection; reconnects when it breaks"
    fields = {
        "dsn": Field("str", required=True, secret=True, help="libpq URL or conninfo"),
        "query": Field("str", default="SELECT 1"),
    }

    def __init__(self, config: object) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self._conn: psycopg.AsyncConnection | None = None
        self.reconnects = 0

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        started = time.perf_counter()
        reconnected = False
        if self._conn is not None and self._conn.broken:
            await self.close()
        if self._conn is None:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    cfg["dsn"], connect_timeout=max(1, int(timeout)), autocommit=True)
            except psycopg.OperationalError as exc:
                status, message = _connect_reason(exc)
                return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]
            reconnected = self.reconnects > 0 or self._had_connection
            self._had_connection = True
        result = await self._query(cfg["query"], timeout, started)
        if reconnected:
            self.reconnects += 1
        return ProbeResult(result.status, result.message, result.latency_ms, reconnected)

    _had_connection = False

    async def _query(self, query: str, timeout: float, started: float) -> ProbeResult:
        assert self._conn is not None
        try:
            await self._conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            await self._conn.execute(query)
        except psycopg.OperationalError:
            # The kept connection died under us (server restart, pg_terminate_backend):
            # drop it so the next probe reconnects, and report the outage as it is.
            await self.close()
            return ProbeResult.disconnected("connection lost", elapsed_ms(started))
        except psycopg.Error as exc:
            return ProbeResult.error(f"query failed: {_first_line(exc)}", elapsed_ms(started))
        return ProbeResult.connected("query ok", elapsed_ms(started))

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except psycopg.Error:
                pass


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _connect_reason(exc: psycopg.OperationalError) -> tuple[str, str]:
    """(status, message): the server answering "no" is an error, not reaching it is not."""
    text = str(exc).lower()
    if "authentication" in text or "no pg_hba.conf entry" in text:
        return "error", "authentication failed"
    if "does not exist" in text:
        return "error", "database or role does not exist"
    if "refused" in text:
        return "disconnected", "connection refused"
    if "timeout" in text or "timed out" in text:
        return "disconnected", "timed out connecting"
    if "could not translate host name" in text:
        return "disconnected", "DNS lookup failed"
    if "starting up" in text or "shutting down" in text:
        return "disconnected", "the server is starting up or shutting down"
    return "disconnected", "cannot connect: " + _first_line(exc)
