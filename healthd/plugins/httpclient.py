"""One aiohttp session per event loop, shared by the http and ai-service plugins and the
webhook sender (healthd/notify/sender.py): public, though it lives among the plugins.

A fresh TCP connection per probe (force_close) is deliberate: a health check that rides
a pooled keep-alive connection would not notice a listener that stopped accepting. No
cookie jar either: each probe starts as a stranger, so a cookie one answer sets (a login
session, say) never rides along on the next probe of that source or of another source on
the same host (it also spares the jar's lookup on every request).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp

from healthd.core.secrets import safe_url
from healthd.core.words import DISCONNECTED, ERROR

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    s = _sessions.get(loop)
    if s is None or s.closed:
        connector = aiohttp.TCPConnector(limit=0, force_close=True, ttl_dns_cache=10)
        s = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            headers={"User-Agent": "healthd"},
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        _sessions[loop] = s
    return s


async def close_session() -> None:
    loop = asyncio.get_running_loop()
    s = _sessions.pop(loop, None)
    if s is not None:
        await s.close()


def ssl_context(verify: bool, ca_file: str | None = None) -> ssl.SSLContext | bool:
    if not verify:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


def describe_error(exc: BaseException, url: str, timeout: float) -> tuple[str, str]:
    """(status, message) for an exception raised while reaching ``url``; the message never
    carries aiohttp's own text, which can quote the URL with its credentials."""
    where = safe_url(url)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | aiohttp.ServerTimeoutError):
        return DISCONNECTED, f"timed out after {timeout:g} s ({where})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            DISCONNECTED,
            f"TLS certificate rejected: {_reason(exc.certificate_error)} ({where})",
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return DISCONNECTED, f"TLS handshake failed ({where})"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DISCONNECTED, f"DNS lookup failed for {exc.host} ({where})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DISCONNECTED, f"{_os_reason(exc.os_error)} ({where})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return DISCONNECTED, f"server closed the connection ({where})"
    if isinstance(exc, aiohttp.InvalidURL):
        return ERROR, "invalid URL"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return ERROR, f"too many redirects ({where})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return ERROR, f"bad response: HTTP {exc.status} ({where})"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return DISCONNECTED, f"connection broken while reading ({where})"
    return ERROR, f"{type(exc).__name__} ({where})"


def _os_reason(err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if err.strerror:
        return err.strerror.lower()
    return type(err).__name__


def _reason(err: Any) -> str:
    return (
        getattr(err, "verify_message", None) or getattr(err, "reason", None) or type(err).__name__
    )


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more: a server that
    answers with gigabytes costs this process ``limit`` bytes, not the whole answer."""
    buf = bytearray()
    while len(buf) <= limit:
        chunk = await resp.content.read(min(65536, limit + 1 - len(buf)))
        if not chunk:
            return bytes(buf), False
        buf += chunk
    del buf[limit:]
    return bytes(buf), True
