"""HTTP(S): a request with a fresh connection; status, body and certificate checked."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from healthd.core.secrets import safe_url
from healthd.plugins import httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

BODY_LIMIT = 1 << 20  # body_contains reads at most 1 MiB
MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)
UNTIMED = aiohttp.ClientTimeout()  # no aiohttp timer: see _fetch


class HttpPlugin(Plugin):
    name = "http"
    description = "HTTP(S) request: expected status, optional body text and TLS certificate expiry"
    fields = {
        "url": Field("str", required=True, help="http:// or https:// URL"),
        "method": Field("str", default="GET", choices=("GET", "HEAD", "POST", "OPTIONS")),
        "headers": Field(
            "dict",
            default={},
            secret=True,
            help="request headers (values may be secret references)",
        ),
        "expect_status": Field("codes", help="a code or list of codes; default any 2xx/3xx"),
        "body_contains": Field("str", help="text the body must contain"),
        "verify_tls": Field("bool", default=True),
        "ca_file": Field("str", help="CA bundle to verify the server certificate against"),
        "follow_redirects": Field("bool", default=True),
        "cert_expiry_days": Field(
            "int",
            default=0,
            help="error when the certificate expires within N days (0: off; needs verify_tls)",
        ),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not self.config["url"].startswith(("http://", "https://")):
            from healthd.core.errors import ConfigError

            raise ConfigError("config.url", "must start with http:// or https://")

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        url: str = cfg["url"]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                status, body = await _fetch(cfg)
            latency = elapsed_ms(started)
            cert_problem = None
            if cfg["cert_expiry_days"] > 0 and url.startswith("https://") and cfg["verify_tls"]:
                cert_problem = await _cert_problem(url, cfg, timeout)
            return _judge(status, body, cfg, cert_problem, latency)
        except RedirectRefused as exc:
            return ProbeResult.error(str(exc), elapsed_ms(started))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            word, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(word, message, elapsed_ms(started))  # type: ignore[arg-type]


class RedirectRefused(Exception):
    """A redirect the probe will not follow (not http(s), or too many)."""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


async def _fetch(cfg: dict[str, Any]) -> tuple[int, bytes]:
    """The request, following redirects ourselves: the configured headers (a declared
    secret field: API keys, tokens) go only to the origin of ``url``. A redirect to another
    scheme, host or port is still followed, but without them (aiohttp's own redirects
    would forward every custom header to wherever the Location points)."""
    url: str = cfg["url"]
    home: tuple[str, str, int | None] | None = None  # url's origin, worked out at a redirect
    method: str = cfg["method"]
    declared: dict[str, str] = cfg.get("headers") or {}
    for hop in range(MAX_REDIRECTS + 1):
        if hop == 0:
            same = True
        else:
            home = home or origin(cfg["url"])
            same = origin(url) == home
        async with httpclient.session().request(
            method,
            url,
            headers=(declared if same else None) or None,
            ssl=httpclient.ssl_context(cfg["verify_tls"], cfg.get("ca_file")),
            allow_redirects=False,
            # check() bounds the whole exchange, redirects included: a second timer per
            # request would only cost time on every probe
            timeout=UNTIMED,
        ) as resp:
            location = resp.headers.get("Location")
            if cfg["follow_redirects"] and resp.status in REDIRECTS and location:
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise RedirectRefused(f"HTTP {resp.status} redirect to a non-HTTP URL")
                if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                    method = "GET"
                continue
            body = b""
            if cfg.get("body_contains") is not None:
                body, _ = await httpclient.read_capped(resp, BODY_LIMIT)
            return resp.status, body
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects ({safe_url(cfg['url'])})")


def _judge(
    status: int, body: bytes, cfg: dict[str, Any], cert_problem: str | None, latency: float
) -> ProbeResult:
    expected = cfg.get("expect_status")
    if expected is None:
        good = 200 <= status < 400
    else:
        good = status in (expected if isinstance(expected, list) else [expected])
    if not good:
        return ProbeResult.error(f"HTTP {status}", latency)
    needle = cfg.get("body_contains")
    if needle is not None and needle.encode() not in body:
        return ProbeResult.error(
            f"HTTP {status}, but the body does not contain {needle!r}", latency
        )
    if cert_problem:
        return ProbeResult.error(cert_problem, latency)
    return ProbeResult.connected(f"HTTP {status}", latency)


async def _cert_problem(url: str, cfg: dict[str, Any], timeout: float) -> str | None:
    """The certificate's expiry, read from a handshake of our own: aiohttp releases the
    connection (and its TLS object) as soon as a short body is read."""
    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=cfg.get("ca_file"))
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                parts.hostname, parts.port or 443, ssl=ctx, server_hostname=parts.hostname
            ),
            timeout,
        )
    except (OSError, TimeoutError):
        return None  # the request itself just succeeded; a flaky second handshake is not news
    cert = writer.get_extra_info("peercert")
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    if not cert or "notAfter" not in cert:
        return None
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    left = (expires - datetime.now(UTC)).total_seconds() / 86400
    if left < cfg["cert_expiry_days"]:
        return f"TLS certificate expires in {left:.1f} days ({expires:%Y-%m-%d})"
    return None
