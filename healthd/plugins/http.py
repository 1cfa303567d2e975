"""HTTP(S): a request with a fresh connection; status, body and certificate checked."""

from __future__ import annotations

import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from healthd.core.phases import Phases
from healthd.http import CurlError
from healthd.plugins import conditions, httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms
from healthd.plugins.httpclient import MAX_REDIRECTS, REDIRECTS, RedirectRefused, origin

BODY_LIMIT = 1 << 20  # body_contains and expect_json read at most 1 MiB (no probe reads more)
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
            status, body, complete, certs, phases = await _fetch(cfg, timeout, self.conditions)
            answer = conditions.Answer(status, body, elapsed_ms(started), body_complete=complete)
            answer = _with_cert(answer, _earliest_expiry(certs))
            cert_problem = _cert_problem(answer, cfg["cert_expiry_days"])
            return _timed(_judge(answer, cfg, cert_problem, self.conditions), phases)
        except (RedirectRefused, ValueError) as exc:  # ValueError: a header with a line break
            return ProbeResult.error(str(exc), elapsed_ms(started))
        except (TimeoutError, CurlError) as exc:
            word, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(word, message, elapsed_ms(started))  # type: ignore[arg-type]


async def _fetch(
    cfg: dict[str, Any], timeout: float, conds: conditions.Conditions
) -> tuple[int, bytes, bool, tuple[dict[str, str], ...], Phases]:
    """The request, redirects followed by httpclient.fetch (the configured headers go only
    to the origin of ``url``): status, body (read when a check needs it), whether the body
    was read whole, the certificate chain of ``url``'s own host when its expiry is checked
    (libcurl's CERTINFO, from the probe's own handshake) and the phases."""
    url: str = cfg["url"]
    wants_cert = cfg["cert_expiry_days"] > 0 or conds.needs_cert
    check_cert = wants_cert and url.startswith("https://") and cfg["verify_tls"]
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
        keep_body=cfg.get("body_contains") is not None or conds.needs_body,
    )
    return resp.status, resp.body, not resp.truncated, first.certs, phases


def _timed(result: ProbeResult, phases: Phases) -> ProbeResult:
    return ProbeResult(result.status, result.message, result.latency_ms, False, phases)


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


def _earliest_expiry(certs: tuple[dict[str, str], ...]) -> datetime | None:
    """The earliest expiry in the chain the server presented (the leaf's, unless an
    intermediate runs out first: the chain breaks then too), as blackbox_exporter's
    probe_ssl_earliest_cert_expiry reads it."""
    dates = []
    for cert in certs:
        try:
            dates.append(ssl.cert_time_to_seconds(cert["Expire date"]))
        except (KeyError, ValueError):
            continue
    return datetime.fromtimestamp(min(dates), UTC) if dates else None


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
