"""HTTP(S): a request with a fresh connection; status, body and certificate checked."""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime
from typing import Any

from healthd.core.phases import Phases
from healthd.http import CurlError
from healthd.plugins import httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms
from healthd.plugins.httpclient import MAX_REDIRECTS, REDIRECTS, RedirectRefused, origin

BODY_LIMIT = 1 << 20  # body_contains reads at most 1 MiB (and no probe reads more)
__all__ = ["MAX_REDIRECTS", "REDIRECTS", "HttpPlugin", "RedirectRefused", "origin"]


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
            status, body, certs, phases = await _fetch(cfg, timeout)
            latency = elapsed_ms(started)
            cert_problem = None
            if certs:
                cert_problem = _cert_problem(certs, cfg)
            return _timed(_judge(status, body, cfg, cert_problem, latency), phases)
        except (RedirectRefused, ValueError) as exc:  # ValueError: a header with a line break
            return ProbeResult.error(str(exc), elapsed_ms(started))
        except (TimeoutError, CurlError) as exc:
            word, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(word, message, elapsed_ms(started))  # type: ignore[arg-type]


async def _fetch(
    cfg: dict[str, Any], timeout: float
) -> tuple[int, bytes, tuple[dict[str, str], ...], Phases]:
    """The request, redirects followed by httpclient.fetch (the configured headers go only
    to the origin of ``url``); the certificate chain of ``url``'s own host when its expiry
    is checked (libcurl's CERTINFO, from the probe's own handshake)."""
    url: str = cfg["url"]
    check_cert = cfg["cert_expiry_days"] > 0 and url.startswith("https://") and cfg["verify_tls"]
    resp, phases, first = await httpclient.fetch(
        url,
        timeout,
        method=cfg["method"],
        headers=cfg.get("headers") or None,
        follow=cfg["follow_redirects"],
        cert_info=check_cert,
        verify=cfg["verify_tls"],
        ca_file=cfg.get("ca_file"),
        body_limit=BODY_LIMIT,
        keep_body=cfg.get("body_contains") is not None,
    )
    return resp.status, resp.body, first.certs, phases


def _timed(result: ProbeResult, phases: Phases) -> ProbeResult:
    return ProbeResult(result.status, result.message, result.latency_ms, False, phases)


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


def _cert_problem(certs: tuple[dict[str, str], ...], cfg: dict[str, Any]) -> str | None:
    """The earliest expiry in the chain the server presented (the leaf's, unless an
    intermediate runs out first: the chain breaks then too), as blackbox_exporter's
    probe_ssl_earliest_cert_expiry reads it."""
    dates = []
    for cert in certs:
        try:
            dates.append(ssl.cert_time_to_seconds(cert["Expire date"]))
        except (KeyError, ValueError):
            continue
    if not dates:
        return None
    expires = datetime.fromtimestamp(min(dates), UTC)
    left = (expires - datetime.now(UTC)).total_seconds() / 86400
    if left < cfg["cert_expiry_days"]:
        return f"TLS certificate expires in {left:.1f} days ({expires:%Y-%m-%d})"
    return None
