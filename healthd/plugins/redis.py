"""Redis: PING over a connection kept between probes, reconnected (and counted) when it
breaks, as postgres.py does. redis-py's asyncio client, from the ``redis`` extra."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from healthd.core.errors import ConfigError, first_line
from healthd.core.words import CONNECTED
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms, needs_extra

if TYPE_CHECKING:
    from redis.asyncio import Redis

SCHEMES = ("redis://", "rediss://", "unix://")


class RedisPlugin(Plugin):
    name = "redis"
    description = "Redis: PING on a kept connection (AUTH when a password is given)"
    extra = "redis"
    extra_modules = ("redis",)
    # the URL is shown (without its credentials), so it is no secret field; its password is one
    url_password_fields = ("url",)
    fields = {
        "url": Field(
            "str",
            required=True,
            refs=True,
            help="redis://[:password@]host:port/db, rediss:// for TLS (may be a reference)",
        ),
        "password": Field("str", secret=True, help="instead of the URL's password"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        url = self.config["url"]
        if isinstance(url, str) and not url.startswith(SCHEMES):
            raise ConfigError("config.url", "must start with redis://, rediss:// or unix://")
        self._client: Redis | None = None
        self._ever_connected = False
        self.reconnects = 0

    async def check(self, timeout: float) -> ProbeResult:
        missing = needs_extra(self)
        if missing is not None:
            return missing
        # imported before the clock starts: the first probe should not spend its timeout
        # loading the client
        import redis.asyncio  # noqa: F401
        from redis import exceptions as rx

        cfg = self.resolved()
        started = time.perf_counter()
        reconnected = False
        for attempt in (1, 2):
            held = self._client is not None
            try:
                async with asyncio.timeout(timeout):
                    answer = await self._ping(cfg, timeout)
            except (rx.AuthenticationError, rx.AuthenticationWrongNumberOfArgsError):
                await self.close()
                return ProbeResult.error("authentication failed", elapsed_ms(started))
            except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
                await self.close()
                if held and attempt == 1:
                    # the kept connection died (a restart, CLIENT KILL, an idle timeout):
                    # one fresh connection decides, as in postgres.py
                    continue
                return ProbeResult.disconnected(_unreachable(exc, timeout), elapsed_ms(started))
            except TimeoutError:
                await self.close()  # a reply cut off halfway leaves the connection unusable
                return ProbeResult.disconnected(f"timed out after {timeout:g} s")
            except rx.RedisError as exc:
                return ProbeResult.error(f"PING refused: {first_line(exc)}", elapsed_ms(started))
            if answer is not True:
                return ProbeResult.error(f"PING answered {answer!r}", elapsed_ms(started))
            reconnected = reconnected or (not held and self._ever_connected)
            self._ever_connected = True
            break
        if reconnected:
            self.reconnects += 1
        return ProbeResult(CONNECTED, "PONG", elapsed_ms(started), reconnected)

    async def _ping(self, cfg: dict[str, Any], timeout: float) -> Any:
        if self._client is None:
            self._client = _client(cfg, timeout)
        return await self._client.ping()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.aclose()


def _client(cfg: dict[str, Any], timeout: float) -> Redis:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {}
    if cfg.get("password") is not None:
        options["password"] = cfg["password"]
    return Redis.from_url(
        cfg["url"],
        # one connection of our own, no pool: a probe must notice when it breaks
        single_connection_client=True,
        # no silent retries: a retry would hide the broken connection this plugin counts
        retry=Retry(NoBackoff(), 0),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        client_name="healthd-probe",
        **options,
    )


def _unreachable(exc: BaseException, timeout: float) -> str:
    """One line without redis-py's own text where it may quote the URL."""
    from redis import exceptions as rx

    if isinstance(exc, rx.TimeoutError):
        return f"timed out after {timeout:g} s"
    text = str(exc).lower()
    causes = (exc, exc.__cause__, exc.__context__)
    if any(isinstance(e, ConnectionRefusedError) for e in causes) or "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "DNS lookup failed"
    if "closed by server" in text or "connection reset" in text:
        return "connection lost"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "cannot connect: " + first_line(exc)[:200]
