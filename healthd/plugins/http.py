"""HTTP(S): a request with a fresh connection; status, body and certificate checked."""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from healthd.plugins import _http
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

BODY_LIMIT = 1 << 20  # body_contains reads at most 1 MiB


class HttpPlugin(Plugin):
    name = "http"
    description = "HTTP(S) request: expected status, optional body text and TLS certificate expiry"
    fields = {
        "url": Field("str", required=True, help="http:// or https:// URL"),
        "method": Field("str", default="GET", choices=("GET", "HEAD", "POST", "OPTIONS")),
        "headers": Field("dict", default={}, secret=True, help="request headers (values may be secret references)"),
        "expect_status": Field("codes", help="a code or list of codes; default any 2xx/3xx"),
        "body_contains": Field("str", help="text the body must contain"),
        "verify_tls": Field("bool", default=True),
        "ca_file": Field("str", help="CA bundle to verify the server certificate against"),
        "follow_redirects": Field("bool", default=True),
        "cert_expiry_days": Field("int", default=0, help="error when the certificate expires within N days (0: off)"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not self.config["url"].startswith(("http://", "https://")):
            from healthd.errors import ConfigError

            raise ConfigError("config.url", "must start with http:// or https://")

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        url: str = cfg["url"]
        started = time.perf_counter()
        try:
            async with _http.session().request(
                cfg["method"], url, headers=cfg.get("headers") or None,
                ssl=_http.ssl_context(cfg["verify_tls"], cfg.get("ca_file")),
                allow_redirects=cfg["follow_redirects"],
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                cert_problem = _cert_problem(resp, cfg["cert_expiry_days"])
                body = b""
                if cfg.get("body_contains") is not None:
                    body = await resp.content.read(BODY_LIMIT)
                latency = elapsed_ms(started)
                return _judge(resp.status, body, cfg, cert_problem, latency)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            status, message = _http.describe_error(exc, url, timeout)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]


def _judge(status: int, body: bytes, cfg: dict[str, Any], cert_problem: str | None,
           latency: float) -> ProbeResult:
    expected = cfg.get("expect_status")
    if expected is None:
        good = 200 <= status < 400
    else:
        good = status in (expected if isinstance(expected, list) else [expected])
    if not good:
        return ProbeResult.error(f"HTTP {status}", latency)
    needle = cfg.get("body_contains")
    if needle is not None and needle.encode() not in body:
        return ProbeResult.error(f"HTTP {status}, but the body does not contain {needle!r}", latency)
    if cert_problem:
        return ProbeResult.error(cert_problem, latency)
    return ProbeResult.connected(f"HTTP {status}", latency)


def _cert_problem(resp: aiohttp.ClientResponse, days: int) -> str | None:
    if days <= 0 or resp.connection is None or resp.connection.transport is None:
        return None
    sslobj = resp.connection.transport.get_extra_info("ssl_object")
    if not isinstance(sslobj, ssl.SSLObject):
        return None
    cert = sslobj.getpeercert()
    if not cert or "notAfter" not in cert:
        return None  # not verified (verify_tls false): the expiry is not known
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    left = (expires - datetime.now(UTC)).total_seconds() / 86400
    if left < days:
        return f"TLS certificate expires in {left:.1f} days ({expires:%Y-%m-%d})"
    return None
