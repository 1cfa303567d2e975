"""HTTP(S): a request with a fresh connection; status, body and certificate checked."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from healthd.core.secrets import safe_url
from healthd.plugins import conditions, httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

BODY_LIMIT = 1 << 20  # body_contains and expect_json read at most 1 MiB
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
        # conditions on the answer, judged by conditions.py
        "expect_json": Field(
            "objects", help='[{"path": JMESPath, "equals": value} or {"path": ..., "exists": true}]'
        ),
        "max_latency_ms": Field("float", help="error when the answer takes longer"),
        "min_cert_days": Field("float", help="https: error when the certificate has fewer days"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not self.config["url"].startswith(("http://", "https://")):
            from healthd.core.errors import ConfigError

            raise ConfigError("config.url", "must start with http:// or https://")
        self.conditions = conditions.parse(self.config)

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        url: str = cfg["url"]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                status, body, complete = await _fetch(cfg, self.conditions.needs_body)
            latency = elapsed_ms(started)
            answer = conditions.Answer(status, body, latency, body_complete=complete)
            cert_problem = None
            wants_cert = cfg["cert_expiry_days"] > 0 or self.conditions.needs_cert
            if wants_cert and url.startswith("https://") and cfg["verify_tls"]:
                expires = await _cert_expiry(url, cfg, timeout)
                answer = _with_cert(answer, expires)
                cert_problem = _cert_problem(answer, cfg["cert_expiry_days"])
            return _judge(answer, cfg, cert_problem, self.conditions)
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


async def _fetch(cfg: dict[str, Any], needs_body: bool = False) -> tuple[int, bytes, bool]:
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
            body, more = b"", False
            if cfg.get("body_contains") is not None or needs_body:
                body, more = await httpclient.read_capped(resp, BODY_LIMIT)
            return resp.status, body, not more
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects ({safe_url(cfg['url'])})")


def _judge(
    answer: conditions.Answer,
    cfg: dict[str, Any],
    cert_problem: str | None,
    conds: conditions.Conditions,
) -> ProbeResult:
    status, body, latency = answer.status, answer.body, answer.elapsed_ms
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
    failed = conditions.evaluate(conds, answer) if conds else None
    if failed:
        return ProbeResult.error(f"HTTP {status}, but {failed}", latency)
    if cert_problem:
        return ProbeResult.error(cert_problem, latency)
    return ProbeResult.connected(f"HTTP {status}", latency)


def _with_cert(answer: conditions.Answer, expires: datetime | None) -> conditions.Answer:
    if expires is None:
        return answer
    left = (expires - datetime.now(UTC)).total_seconds() / 86400
    return replace(answer, cert_days=left, cert_expires=expires)


def _cert_problem(answer: conditions.Answer, within_days: int) -> str | None:
    left, expires = answer.cert_days, answer.cert_expires
    if within_days > 0 and left is not None and expires is not None and left < within_days:
        return f"TLS certificate expires in {left:.1f} days ({expires:%Y-%m-%d})"
    return None


async def _cert_expiry(url: str, cfg: dict[str, Any], timeout: float) -> datetime | None:
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
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
