"""PostgreSQL: a query over a connection kept between probes, reconnected when broken."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg

from healthd.core.errors import first_line
from healthd.core.words import CONNECTED, DISCONNECTED, ERROR
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms


class PostgresPlugin(Plugin):
    name = "postgres"
    description = "PostgreSQL: runs a query on a kept connection; reconnects when it breaks"
    fields = {
        "dsn": Field("str", required=True, secret=True, help="libpq URL or conninfo"),
        "query": Field("str", default="SELECT 1"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if isinstance(self.config["dsn"], str):
            from healthd.core import dburl

            dburl.check(self.config["dsn"], "config.dsn")
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._ever_connected = False
        self.reconnects = 0

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        started = time.perf_counter()
        reconnected = False
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed or self._conn.broken:
                await self.close()
                failure = await self._connect(cfg["dsn"], timeout, started)
                if failure is not None:
                    return failure
                reconnected = reconnected or self._ever_connected
                self._ever_connected = True
            try:
                await self._query(cfg["query"], timeout)
            except psycopg.OperationalError:
                # The kept connection died under us (server restart, pg_terminate_backend).
                # One fresh connection decides: a dead idle connection is not an outage.
                await self.close()
                if attempt == 2:
                    return ProbeResult.disconnected("connection lost", elapsed_ms(started))
                continue
            except psycopg.Error as exc:
                return ProbeResult.error(f"query failed: {first_line(exc)}", elapsed_ms(started))
            break
        if reconnected:
            self.reconnects += 1
        return ProbeResult(CONNECTED, "query ok", elapsed_ms(started), reconnected)

    async def _connect(self, dsn: str, timeout: float, started: float) -> ProbeResult | None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                dsn,
                connect_timeout=max(1, int(timeout)),
                autocommit=True,
                application_name="healthd-probe",
            )
        except psycopg.OperationalError as exc:
            status, message = _connect_reason(exc)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]
        except psycopg.ProgrammingError:
            # a malformed dsn (from a reference): libpq's complaint quotes the text around
            # the fault, a piece of the password perhaps
            return ProbeResult.error(
                "the dsn is not a valid libpq URL or conninfo string", elapsed_ms(started)
            )
        return None

    async def _query(self, query: str, timeout: float) -> None:
        assert self._conn is not None
        await self._conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        await self._conn.execute(query)  # type: ignore[arg-type,unused-ignore]

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()


def _connect_reason(exc: psycopg.OperationalError) -> tuple[str, str]:
    """(status, message): the server answering "no" is an error, not reaching it is not."""
    text = str(exc).lower()
    if "authentication" in text or "no pg_hba.conf entry" in text:
        return ERROR, "authentication failed"
    if "does not exist" in text:
        return ERROR, "database or role does not exist"
    if "refused" in text:
        return DISCONNECTED, "connection refused"
    if "timeout" in text or "timed out" in text:
        return DISCONNECTED, "timed out connecting"
    if "could not translate host name" in text:
        return DISCONNECTED, "DNS lookup failed"
    if "starting up" in text or "shutting down" in text:
        return DISCONNECTED, "the server is starting up or shutting down"
    return DISCONNECTED, "cannot connect: " + first_line(exc)
