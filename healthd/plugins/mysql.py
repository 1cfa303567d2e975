"""MySQL and MariaDB: a query over a connection kept between probes, reconnected (and
counted) when it breaks, as postgres.py does. aiomysql, from the ``mysql`` extra."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from healthd.core.errors import ConfigError, first_line
from healthd.core.words import CONNECTED, DISCONNECTED, ERROR
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms, needs_extra

SCHEMES = ("mysql", "mariadb")
# the client's own codes (CR_*): the server could not be reached, or the link broke
_UNREACHABLE = {2002: "cannot connect", 2003: "connection refused", 2005: "DNS lookup failed"}
_LOST = (2006, 2013, 2014, 2055)  # server has gone away, lost connection, out of sync
# the server's answers that refuse this login or its database
_REFUSED = {
    1044: "access denied to the database",
    1045: "access denied",
    1049: "unknown database",
    1129: "host blocked by the server",
    1130: "host not allowed to connect",
    1698: "access denied",
}


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    user: str
    password: str
    db: str | None


def parse_dsn(dsn: str) -> Dsn:
    """``mysql://user:password@host:port/db`` (or ``mariadb://``).

    :raises ValueError: naming what is wrong, never quoting the DSN (it holds a password).
    """
    try:
        parts = urlsplit(dsn)
        port = parts.port or 3306
    except ValueError:
        raise ValueError("must be mysql://user:password@host:port/db") from None
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with mysql:// or mariadb://")
    if not parts.hostname:
        raise ValueError("must name a host: mysql://user:password@host:port/db")
    db = unquote(parts.path.lstrip("/")) or None
    return Dsn(
        parts.hostname,
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        db,
    )


class MysqlPlugin(Plugin):
    name = "mysql"
    description = "MySQL/MariaDB: runs a query on a kept connection; reconnects when it breaks"
    extra = "mysql"
    extra_modules = ("aiomysql", "pymysql")
    # the whole dsn is secret (a secret field); its password alone is one too
    url_password_fields = ("dsn",)
    fields = {
        "dsn": Field("str", required=True, secret=True, help="mysql://user:password@host:port/db"),
        "query": Field("str", default="SELECT 1"),
        "tls": Field("bool", default=False, help="connect with TLS, the certificate verified"),
        "ca_file": Field("str", help="CA bundle for tls"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if isinstance(self.config["dsn"], str):
            try:
                parse_dsn(self.config["dsn"])
            except ValueError as exc:
                raise ConfigError("config.dsn", str(exc)) from None
        self._conn: Any = None
        self._ever_connected = False
        self.reconnects = 0

    async def check(self, timeout: float) -> ProbeResult:
        missing = needs_extra(self)
        if missing is not None:
            return missing
        # imported before the clock starts: the first probe should not spend its timeout
        # loading the client
        import aiomysql  # noqa: F401

        cfg = self.resolved()
        try:
            dsn = parse_dsn(cfg["dsn"])
        except ValueError as exc:  # a dsn read from a reference just now
            return ProbeResult.error(f"config.dsn {exc}")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                return await self._probe(dsn, cfg, timeout, started)
        except TimeoutError:
            await self.close()  # a query cut off halfway leaves the connection unusable
            return ProbeResult.disconnected(f"timed out after {timeout:g} s")

    async def _probe(
        self, dsn: Dsn, cfg: dict[str, Any], timeout: float, started: float
    ) -> ProbeResult:
        import pymysql

        reconnected = False
        for attempt in (1, 2):
            held = self._conn is not None
            if not held:
                failure = await self._connect(dsn, cfg, timeout, started)
                if failure is not None:
                    return failure
                reconnected = reconnected or self._ever_connected
                self._ever_connected = True
            try:
                await self._query(cfg["query"])
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                if _code(exc) in _LOST or isinstance(exc, pymysql.err.InterfaceError):
                    # the kept connection died (a restart, KILL, wait_timeout): one fresh
                    # connection decides, as in postgres.py
                    await self.close()
                    if held and attempt == 1:
                        continue
                    return ProbeResult.disconnected("connection lost", elapsed_ms(started))
                return ProbeResult.error(f"query failed: {_message(exc)}", elapsed_ms(started))
            except pymysql.err.MySQLError as exc:
                return ProbeResult.error(f"query failed: {_message(exc)}", elapsed_ms(started))
            break
        if reconnected:
            self.reconnects += 1
        return ProbeResult(CONNECTED, "query ok", elapsed_ms(started), reconnected)

    async def _connect(
        self, dsn: Dsn, cfg: dict[str, Any], timeout: float, started: float
    ) -> ProbeResult | None:
        import aiomysql
        import pymysql

        tls = None
        if cfg["tls"]:
            try:
                tls = ssl.create_default_context(cafile=cfg.get("ca_file"))
            except (OSError, ssl.SSLError):
                return ProbeResult.error("cannot read ca_file")
        try:
            self._conn = await aiomysql.connect(
                host=dsn.host,
                port=dsn.port,
                user=dsn.user,
                password=dsn.password,
                db=dsn.db,
                connect_timeout=timeout,
                autocommit=True,
                ssl=tls,
                program_name="healthd-probe",
            )
        except pymysql.err.MySQLError as exc:
            status, message = _connect_reason(exc)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]
        except OSError as exc:
            return ProbeResult.disconnected(
                f"cannot connect: {exc.strerror or type(exc).__name__}", elapsed_ms(started)
            )
        return None

    async def _query(self, query: str) -> None:
        async with self._conn.cursor() as cur:
            await cur.execute(query)
            await cur.fetchall()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # close(), not ensure_closed(): no QUIT round trip to a server that may be gone
            with contextlib.suppress(Exception):
                conn.close()


def _code(exc: BaseException) -> int | None:
    # PyMySQL's errors carry (code, message) as their args
    args: tuple[Any, ...] = exc.args
    return args[0] if args and isinstance(args[0], int) else None


def _message(exc: BaseException) -> str:
    args: tuple[Any, ...] = exc.args
    text = args[1] if len(args) > 1 and isinstance(args[1], str) else first_line(exc)
    return first_line(Exception(text))[:300]


def _connect_reason(exc: BaseException) -> tuple[str, str]:
    """(status, message): the server answering "no" is an error, not reaching it is not."""
    code = _code(exc)
    if code in _REFUSED:
        return ERROR, _REFUSED[code]
    if code in _UNREACHABLE:
        return DISCONNECTED, _unreachable(exc, _UNREACHABLE[code])
    if code in _LOST:
        return DISCONNECTED, "connection lost while logging in"
    if code is not None and code < 2000:
        return ERROR, f"refused: {_message(exc)}"
    return DISCONNECTED, f"cannot connect: {_message(exc)}"


def _unreachable(exc: BaseException, default: str) -> str:
    """aiomysql's 2003 covers every way of not reaching the server; its cause says which."""
    import socket

    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, socket.gaierror):
        return "DNS lookup failed"
    if isinstance(cause, TimeoutError):
        return "timed out connecting"
    if isinstance(cause, OSError) and cause.strerror:
        return f"cannot connect: {cause.strerror.lower()}"
    return default
