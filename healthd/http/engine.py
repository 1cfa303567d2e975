"""libcurl's multi interface on the running asyncio loop: one ``CurlMulti`` per event loop,
its sockets watched by that loop (add_reader/add_writer) and its one timer a loop timer,
so thousands of requests are in flight with no thread per request and no second loop.

Why libcurl: a fresh-connection GET through it costs a third to a half of aiohttp's CPU
here (tests/bench/README.md), and it times each phase of the exchange (name lookup,
connect, TLS, first byte, total) and hands over the peer's certificate chain, which a
monitoring tool is asked for.

What every request gets, whoever asks (set once per easy handle, in ``_Slot.base``):

- a fresh TCP connection, closed after the answer (FRESH_CONNECT, FORBID_REUSE): a check
  riding a pooled keep-alive connection would not notice a listener that stopped
  accepting; for the same reason a full TLS handshake each time (no session resumption);
- no proxy from the environment: libcurl reads ``http_proxy``/``HTTPS_PROXY`` itself
  unless PROXY is set, and an empty PROXY turns that off;
- no cookie engine: each request starts as a stranger, so a cookie one answer sets never
  rides along on the next request (of this source or another on the same host);
- no redirects followed by libcurl: the caller sees the 3xx and decides (the http plugin
  sends its declared headers only to the URL's own origin); only http and https;
- ``User-Agent: healthd``, HTTP/1.1, gzip/deflate accepted and decoded (as aiohttp did).

The body is read up to ``body_limit`` bytes and no further: a server answering with
gigabytes costs the limit, not the whole answer (the transfer is stopped there).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pycurl

from healthd.core.phases import Phases, from_curl
from healthd.http import wire

log = logging.getLogger(__name__)

USER_AGENT = "healthd"
BODY_LIMIT = 1 << 20
IDLE_MAX = 1024  # easy handles kept for reuse (about the probes in flight at once)
_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
# the CA store Python's ssl.create_default_context() would load (honours SSL_CERT_FILE):
# the wheel's libcurl was built elsewhere and its compiled-in path may not exist here
_CA = ssl.get_default_verify_paths()


class CurlError(Exception):
    """A request libcurl could not complete. ``code`` is libcurl's CURLE_* number,
    ``os_errno`` the system error behind it (0 if none). ``reason`` is libcurl's own text:
    it may name the host, so it is worded for people by
    healthd.plugins.httpclient.describe_error, never shown as it is."""

    def __init__(self, code: int, reason: str, os_errno: int = 0) -> None:
        super().__init__(code, reason, os_errno)
        self.code = code
        self.reason = reason
        self.os_errno = os_errno

    def __str__(self) -> str:
        return f"libcurl error {self.code}"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much
class Response:
    """What came back. ``body`` holds at most the request's ``body_limit`` bytes
    (``truncated``: there was more, not read); empty unless ``keep_body``. ``headers``
    (the final answer's, in order) only with ``want_headers``; ``certs`` (the peer's
    chain, leaf first, each certificate as libcurl's CERTINFO fields) only with
    ``cert_info``. ``redirect_url`` is where a 3xx answer's Location points, made
    absolute. ``connects`` counts the connections this request opened."""

    status: int
    body: bytes
    truncated: bool
    phases: Phases
    redirect_url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    certs: tuple[dict[str, str], ...] = ()
    connects: int = 0


class _Slot:
    """One easy handle and what its callbacks fill in for the request it carries."""

    __slots__ = (
        "h",
        "fut",
        "buf",
        "got",
        "limit",
        "keep",
        "capped",
        "lines",
        "shape",
        "auth",
        "headers",
    )

    def __init__(self) -> None:
        self.h = pycurl.Curl()
        self.fut: asyncio.Future[tuple[int, str]] | None = None
        self.buf = bytearray()
        self.got = 0
        self.limit = BODY_LIMIT
        self.keep = False
        self.capped = False
        self.lines: list[bytes] = []
        self.shape: tuple[Any, ...] = _PLAIN
        self.auth = False  # USERNAME/PASSWORD set by the last request
        self.headers = False  # HTTPHEADER set by the last request
        self.base()

    def base(self) -> None:
        h = self.h
        h.setopt(pycurl.NOSIGNAL, 1)
        h.setopt(pycurl.FRESH_CONNECT, 1)
        h.setopt(pycurl.FORBID_REUSE, 1)
        h.setopt(pycurl.SSL_SESSIONID_CACHE, 0)
        h.setopt(pycurl.PROXY, "")
        h.setopt(pycurl.USERAGENT, USER_AGENT)
        h.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        h.setopt(pycurl.ACCEPT_ENCODING, "gzip, deflate")
        h.setopt(pycurl.PROTOCOLS, _PROTOCOLS)
        h.setopt(pycurl.REDIR_PROTOCOLS, _PROTOCOLS)
        h.setopt(pycurl.DNS_CACHE_TIMEOUT, 10)  # as aiohttp's ttl_dns_cache was
        h.setopt(pycurl.WRITEFUNCTION, self._write)
        _default_ca(h)

    def _write(self, chunk: bytes) -> int | None:
        got = self.got + len(chunk)
        if got > self.limit:
            if self.keep:
                self.buf += chunk[: self.limit - self.got]
            self.got, self.capped = self.limit, True
            return 0  # fewer bytes taken than given: libcurl stops the transfer here
        self.got = got
        if self.keep:
            self.buf += chunk
        return None

    def _header(self, line: bytes) -> None:
        self.lines.append(line)

    def prepare(self, url: str, opts: _Options) -> None:
        h = self.h
        if opts.shape != self.shape:
            self._shape(opts)
        try:
            target, userinfo = wire.curl_url(url)
        except ValueError:
            raise CurlError(pycurl.E_URL_MALFORMAT, "malformed URL") from None
        h.setopt(pycurl.URL, target)
        h.setopt(pycurl.TIMEOUT_MS, max(1, int(opts.timeout * 1000)))
        if opts.headers:
            h.setopt(pycurl.HTTPHEADER, opts.headers)
            self.headers = True
        elif self.headers:
            h.unsetopt(pycurl.HTTPHEADER)  # an empty list would leave the old one set
            self.headers = False
        auth = userinfo or opts.auth
        if auth is not None:
            h.setopt(pycurl.USERNAME, auth[0])
            h.setopt(pycurl.PASSWORD, auth[1])
            self.auth = True
        elif self.auth:
            h.unsetopt(pycurl.USERNAME)
            h.unsetopt(pycurl.PASSWORD)
            self.auth = False
        if opts.body is not None:
            h.setopt(pycurl.POSTFIELDSIZE, len(opts.body))
            h.setopt(pycurl.COPYPOSTFIELDS, opts.body)
        self.got, self.capped, self.limit, self.keep = 0, False, opts.body_limit, opts.keep_body

    def _shape(self, opts: _Options) -> None:
        """Options that stay the same from one request to the next on most daemons (the
        method, TLS checks, what is collected) are set only when they change; anything
        unusual last time is cleared by starting the handle afresh."""
        h = self.h
        if self.shape != _PLAIN:
            h.reset()
            self.base()
            self.auth = self.headers = False
        method, has_body, want_headers, cert_info, verify, ca_file = opts.shape
        if method == "HEAD":
            h.setopt(pycurl.NOBODY, 1)
        elif method == "POST" or has_body:
            h.setopt(pycurl.POST, 1)
            if method != "POST":
                h.setopt(pycurl.CUSTOMREQUEST, method)
        elif method != "GET":
            h.setopt(pycurl.CUSTOMREQUEST, method)
        if want_headers:
            h.setopt(pycurl.HEADERFUNCTION, self._header)
        if cert_info:
            h.setopt(pycurl.OPT_CERTINFO, 1)
        if not verify:
            h.setopt(pycurl.SSL_VERIFYPEER, 0)
            h.setopt(pycurl.SSL_VERIFYHOST, 0)
        elif ca_file:
            # only this bundle, as ssl.create_default_context(cafile=...) trusts only it
            h.setopt(pycurl.CAINFO, ca_file)
            h.unsetopt(pycurl.CAPATH)
        self.shape = opts.shape

    def response(self, code: int, reason: str) -> Response:
        h = self.h
        if code and not (code == pycurl.E_WRITE_ERROR and self.capped):
            raise CurlError(code, reason, int(h.getinfo(pycurl.OS_ERRNO)))
        phases = from_curl(
            h.getinfo(pycurl.NAMELOOKUP_TIME_T),
            h.getinfo(pycurl.CONNECT_TIME_T),
            h.getinfo(pycurl.APPCONNECT_TIME_T),
            h.getinfo(pycurl.STARTTRANSFER_TIME_T),
            h.getinfo(pycurl.TOTAL_TIME_T),
        )
        status = int(h.getinfo(pycurl.RESPONSE_CODE))
        redirect = h.getinfo(pycurl.REDIRECT_URL) if 300 <= status < 400 else None
        return Response(
            status,
            bytes(self.buf) if self.keep else b"",
            self.capped,
            phases,
            redirect or None,
            wire.parse_headers(self.lines) if self.shape[2] else (),
            wire.cert_fields(h.getinfo(pycurl.INFO_CERTINFO)) if self.shape[3] else (),
            int(h.getinfo(pycurl.NUM_CONNECTS)),
        )

    def clear(self) -> None:
        self.fut = None
        if self.buf:
            self.buf = bytearray()
        self.lines = []


@dataclass(slots=True)
class _Options:
    timeout: float
    headers: list[str]
    body: bytes | None
    body_limit: int
    keep_body: bool
    auth: tuple[str, str] | None
    shape: tuple[Any, ...]  # (method, has body, want headers, cert info, verify, ca_file)


_PLAIN: tuple[Any, ...] = ("GET", False, False, False, True, None)


class Engine:
    """The multi handle of one event loop and the requests in flight on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self.watched: dict[int, int] = {}  # fd -> 1 read, 2 write, 3 both
        self.timer: asyncio.TimerHandle | None = None
        self.idle: list[_Slot] = []
        self.busy: dict[pycurl.Curl, _Slot] = {}
        self.running = 0  # transfers libcurl has not reported done
        self.closed = False

    # -- libcurl tells the loop what to watch and when to wake it -----------------------

    def _on_socket(self, what: int, fd: int, multi: Any, data: Any) -> None:
        old = self.watched.get(fd, 0)
        want = what & 3  # POLL_IN 1, POLL_OUT 2, POLL_INOUT 3; POLL_REMOVE (4) wants none
        if want == old:
            return
        loop = self.loop
        if old & 1 and not want & 1:
            loop.remove_reader(fd)
        if old & 2 and not want & 2:
            loop.remove_writer(fd)
        # CSELECT_IN is 1 and CSELECT_OUT 2, the same bits
        if want & 1 and not old & 1:
            loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if want & 2 and not old & 2:
            loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        if want:
            self.watched[fd] = want
        else:
            del self.watched[fd]

    def _on_timer(self, ms: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if ms >= 0:
            self.timer = self.loop.call_later(ms / 1000, self._on_timeout)

    def _on_timeout(self) -> None:
        self.timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, ev: int) -> None:
        try:
            _, running = self.multi.socket_action(fd, ev)
        except pycurl.error:  # pragma: no cover - only on libcurl's out-of-memory
            log.exception("libcurl's multi handle failed")
            return
        if running < self.running:
            self._collect()
        self.running = running

    def _collect(self) -> None:
        while True:
            queued, ok, failed = self.multi.info_read()
            for h in ok:
                self._done(h, 0, "")
            for h, code, reason in failed:
                self._done(h, code, reason)
            if not queued:
                return

    def _done(self, h: pycurl.Curl, code: int, reason: str) -> None:
        self.multi.remove_handle(h)
        slot = self.busy.pop(h, None)
        if slot is not None and slot.fut is not None and not slot.fut.done():
            slot.fut.set_result((code, reason))

    # -- requests --------------------------------------------------------------------

    async def request(
        self,
        url: str,
        *,
        timeout: float,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        body_limit: int = BODY_LIMIT,
        keep_body: bool = False,
        want_headers: bool = False,
        cert_info: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> Response:
        """One request with a fresh connection, done within ``timeout`` seconds (libcurl's
        own timer: nothing per request on the loop). ``auth``: basic credentials, for a
        caller that follows redirects itself and keeps the URL's own for its origin.

        :raises CurlError: it could not be completed (refused, timed out, TLS, ...).
        :raises ValueError: a header name or value that would break the request apart.
        """
        if self.closed:
            raise CurlError(pycurl.E_FAILED_INIT, "the HTTP engine is closed")
        lines = wire.header_lines(headers) if headers else []
        if method == "POST" and body is None:
            body = b""  # with no body given libcurl would read one from stdin
        if body is not None:
            declared = {x.split(":", 1)[0].split(";", 1)[0].lower() for x in lines}
            # libcurl would add a form Content-Type and, past 1 MiB, wait for a 100 Continue
            lines += [f"{k}:" for k in ("Content-Type", "Expect") if k.lower() not in declared]
        opts = _Options(
            timeout,
            lines,
            body,
            body_limit,
            keep_body,
            auth,
            (method, body is not None, want_headers, cert_info, verify, ca_file),
        )
        slot = self.idle.pop() if self.idle else _Slot()
        try:
            slot.prepare(url, opts)
        except BaseException:
            self._release(slot)
            raise
        fut: asyncio.Future[tuple[int, str]] = self.loop.create_future()
        slot.fut = fut
        self.busy[slot.h] = slot
        self.multi.add_handle(slot.h)
        self.running += 1
        try:
            code, reason = await fut
            return slot.response(code, reason)
        finally:
            if self.busy.pop(slot.h, None) is not None:  # cancelled while in flight
                self.multi.remove_handle(slot.h)
                self.running -= 1
            self._release(slot)

    def _release(self, slot: _Slot) -> None:
        slot.clear()
        if len(self.idle) < IDLE_MAX and not self.closed:
            self.idle.append(slot)
        else:
            slot.h.close()

    def close(self) -> None:
        """Fail what is in flight, stop watching its sockets, free libcurl's handles."""
        if self.closed:
            return
        self.closed = True
        alive = not self.loop.is_closed()
        for h, slot in list(self.busy.items()):
            if alive:  # the request's own finally releases the handle
                self._done(h, pycurl.E_ABORTED_BY_CALLBACK, "the HTTP engine was closed")
            else:
                self.multi.remove_handle(h)
                slot.h.close()
        self.busy.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if alive:
            for fd in self.watched:
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
        self.watched.clear()
        for slot in self.idle:
            slot.h.close()
        self.idle.clear()
        self.multi.close()


_engines: dict[asyncio.AbstractEventLoop, Engine] = {}


def loop_engine() -> Engine:
    """The running loop's engine, made on first use."""
    loop = asyncio.get_running_loop()
    e = _engines.get(loop)
    if e is None or e.closed:
        for gone in [lp for lp in _engines if lp.is_closed()]:
            _engines.pop(gone).close()  # a loop that ended without close_engine()
        e = _engines[loop] = Engine(loop)
    return e


async def request(url: str, **options: Any) -> Response:
    """:meth:`Engine.request` on the running loop's engine."""
    return await loop_engine().request(url, **options)


async def close_engine() -> None:
    e = _engines.pop(asyncio.get_running_loop(), None)
    if e is not None:
        e.close()


def _default_ca(h: pycurl.Curl) -> None:
    if _CA.cafile:
        h.setopt(pycurl.CAINFO, _CA.cafile)
    if _CA.capath:
        h.setopt(pycurl.CAPATH, _CA.capath)
