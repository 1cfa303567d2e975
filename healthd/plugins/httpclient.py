"""What the HTTP plugins and the webhook sender (healthd/notify/sender.py) share: a
request through libcurl that follows redirects itself (``fetch``), and the words for a
failed request. Public, though it lives among the plugins.

Every request goes through libcurl (healthd/http/engine.py) on a fresh TCP connection: a
health check that rides a pooled keep-alive connection would not notice a listener that
stopped accepting. No cookies either: each request starts as a stranger, so a cookie one
answer sets (a login session, say) never rides along on the next one.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pycurl

from healthd.core.phases import Phases
from healthd.core.secrets import safe_url
from healthd.core.words import DISCONNECTED, ERROR
from healthd.http import CurlError, Response, close_engine, loop_engine
from healthd.http.wire import userinfo

MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)


async def close_session() -> None:
    """Close this loop's libcurl engine (at the loop's end)."""
    await close_engine()


def describe_error(exc: BaseException, url: str, timeout: float) -> tuple[str, str]:
    """(status, message) for an exception raised while reaching ``url``; the message never
    carries libcurl's own text, which can quote the URL with its credentials."""
    where = safe_url(url)
    if isinstance(exc, CurlError):
        return _curl_error(exc, where, timeout, url)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return DISCONNECTED, f"timed out after {timeout:g} s ({where})"
    return ERROR, f"{type(exc).__name__} ({where})"


# libcurl's result codes, in the words healthd has always used for each failure
_BROKEN = (
    pycurl.E_RECV_ERROR,
    pycurl.E_SEND_ERROR,
    pycurl.E_PARTIAL_FILE,
)
_TLS = (pycurl.E_SSL_CONNECT_ERROR, pycurl.E_SSL_CERTPROBLEM, pycurl.E_SSL_CIPHER)
_INVALID = (pycurl.E_URL_MALFORMAT, pycurl.E_UNSUPPORTED_PROTOCOL)
# CURLE_WEIRD_SERVER_REPLY (8) keeps its old FTP name in pycurl
_NOT_HTTP = (pycurl.E_FTP_WEIRD_SERVER_REPLY, pycurl.E_BAD_CONTENT_ENCODING, pycurl.E_HTTP2)
# "SSL certificate OpenSSL verify result: self-signed certificate (18)" (libcurl 8),
# "SSL certificate problem: certificate has expired" (older)
_VERIFY = re.compile(r"verify result: (.+?)(?: \(\d+\))?$|certificate problem: (.+)$")


def _curl_error(exc: CurlError, where: str, timeout: float, url: str) -> tuple[str, str]:
    code = exc.code
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return DISCONNECTED, f"timed out after {timeout:g} s ({where})"
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        return DISCONNECTED, f"TLS certificate rejected: {_verify_reason(exc.reason)} ({where})"
    if code in _TLS:
        return DISCONNECTED, f"TLS handshake failed ({where})"
    if code in (pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_RESOLVE_PROXY):
        return DISCONNECTED, f"DNS lookup failed for {_host(url)} ({where})"
    if code == pycurl.E_COULDNT_CONNECT:
        return DISCONNECTED, f"{_errno_reason(exc.os_errno)} ({where})"
    if code == pycurl.E_GOT_NOTHING:
        return DISCONNECTED, f"server closed the connection ({where})"
    if code in _BROKEN:
        return DISCONNECTED, f"connection broken while reading ({where})"
    if code in _INVALID:
        return ERROR, "invalid URL"
    if code == pycurl.E_TOO_MANY_REDIRECTS:
        return ERROR, f"too many redirects ({where})"
    if code in _NOT_HTTP:
        return ERROR, f"bad response: not valid HTTP ({where})"
    return ERROR, f"libcurl error {code} ({where})"


def _verify_reason(reason: str) -> str:
    """OpenSSL's words for why the chain was refused (``self-signed certificate``);
    libcurl's text around them can name the host, so only they are kept."""
    m = _VERIFY.search(reason)
    if m:
        return (m.group(1) or m.group(2)).strip()
    if "subject name" in reason or "hostname" in reason:
        return "hostname mismatch"
    return "verification failed"


def _errno_reason(number: int) -> str:
    if number == errno.ECONNREFUSED or not number:
        # libcurl reports a refused connection with ECONNREFUSED; with no errno at all
        # it could only be that its connect attempts all failed
        return "connection refused" if number else "could not connect"
    return os.strerror(number).lower()


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class RedirectRefused(Exception):
    """A redirect the probe will not follow (not http(s), or too many)."""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


async def fetch(
    url: str,
    timeout: float,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    follow: bool = True,
    cert_info: bool = False,
    **options: Any,
) -> tuple[Response, Phases, Response]:
    """A request through libcurl (healthd/http/engine.py), following redirects ourselves:
    ``headers`` (a declared secret field: API keys, tokens) and the URL's own
    ``user:password@`` go only to the origin of ``url``. A redirect to another scheme,
    host or port is still followed, but without them (a client's own redirects may forward
    every custom header to wherever the Location points). ``timeout`` bounds the whole
    exchange, redirects included: each hop gets what is left (libcurl's own timer, so no
    second timer per request on the loop).

    :returns: the last answer, the phases of all hops added up, and the first answer
        (whose certificate chain, with ``cert_info``, is the URL's own host's).
    :raises CurlError: a hop failed (refused, timed out, TLS...).
    :raises TimeoutError: the redirects used up the time.
    :raises RedirectRefused: a redirect to a non-HTTP URL, or more than MAX_REDIRECTS.
    """
    started = time.perf_counter()
    home: tuple[str, str, int | None] | None = None  # url's origin, worked out at a redirect
    first: Response | None = None
    total: Phases | None = None
    hop_url, auth = url, None
    engine = loop_engine()
    for hop in range(MAX_REDIRECTS + 1):
        same = True
        if hop:
            home = home or origin(url)
            same = origin(hop_url) == home
            auth = userinfo(url) if same else None
        left = timeout - (time.perf_counter() - started)
        if left <= 0:
            raise TimeoutError
        resp = await engine.request(
            hop_url,
            timeout=left,
            method=method,
            headers=(headers if same else None) or None,
            cert_info=cert_info and not hop,
            auth=auth,
            **options,
        )
        first = first or resp
        total = resp.phases if total is None else total.plus(resp.phases)
        location = resp.redirect_url
        if follow and resp.status in REDIRECTS and location:
            if urlsplit(location).scheme not in ("http", "https"):
                raise RedirectRefused(f"HTTP {resp.status} redirect to a non-HTTP URL")
            hop_url = location
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method = "GET"
            continue
        return resp, total, first
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects ({safe_url(url)})")
