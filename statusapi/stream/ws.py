"""GET /api/v1/ws: the stream's events over a WebSocket, as JSON text frames
{"id", "event", "data"} (the same id, event name and data as the SSE stream, both
rendered from the event by sse.Event), resumable with ?after=ID. Fed by the SSE stream's
per-worker broadcaster: one tail of the history table per worker, however many clients
listen on either.

The protocol is wsproto's (the sans-I/O WebSocket library simple-websocket and
Flask-SocketIO's servers are built on); the connection handling is here because the
stream only speaks: a client has nothing to say but pings, pongs and its close, and
whatever else it sends is read and thrown away within a budget (MAX_MESSAGE, BURST,
RATE), past which it is closed (1009, 1008). Nothing a client sends is kept, so a
flooding client costs a bounded few kilobytes, not the worker's memory. The handshake is
answered before the upgrade as JSON when it is wrong (a bad ?after= too), and no
extension is offered: permessage-deflate would let a small frame inflate a thousandfold,
and every frame sent here is a small JSON text.

It runs on gunicorn's gthread workers with plain threads: the request's thread sends the
events, and one more thread per connection reads the client.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import selectors
import socket
import ssl
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError, generate_accept_token

from statusapi.data import queries
from statusapi.stream import sse as stream
from statusapi.web import params
from statusapi.web.errors import ApiError
from statusapi.web.stopping import STOPPING

bp = Blueprint("ws", __name__)

PING_S = 25  # keeps proxies from timing the connection out, and finds clients that left
WAIT_S = 1.0  # how often a quiet connection checks that its client is still there
SEND_S = 30.0  # a client that takes nothing for this long is dropped (its thread freed)
# What a client may send: a message of up to MAX_MESSAGE bytes (larger: closed with
# 1009), and frames (data, ping, pong) at RATE a second after a burst of BURST (more:
# closed with 1008). A browser sends one pong per PING_S.
MAX_MESSAGE = 4096
BURST = 32
RATE = 4.0
CLOSE_WAIT_S = 2.0  # after our close frame: how long the client's answer is waited for
CLOSE_DRAIN = 1 << 20  # and how much of what it still sends meanwhile is read and dropped
READ_BYTES = 4096

NORMAL, GOING_AWAY, POLICY, TOO_BIG, TRY_AGAIN = 1000, 1001, 1008, 1009, 1013


class _Done(Response):
    """What the WSGI server gets back once the socket has been taken over."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if self.mode == "gunicorn":
            raise StopIteration()  # gunicorn: close the connection, write nothing more
        if self.mode == "werkzeug":
            return super().__call__(environ, start_response)
        return []


class Budget:
    """A token bucket: ``take()`` is False once the client has sent more than ``burst``
    frames beyond ``rate`` a second."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst, self.rate = float(burst), rate
        self.left = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.left = min(self.burst, self.left + (now - self.at) * self.rate)
        self.at = now
        if self.left < 1:
            return False
        self.left -= 1
        return True


class Peer:
    """One client's WebSocket on the socket the server handed over. ``send`` is called by
    the request's thread; a reader thread answers pings and the client's close and reads
    everything else only to drop it. ``gone`` is set once the connection is over."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = Connection(ConnectionType.SERVER)
        # wsproto's state and the socket's write side are shared by both threads
        self.lock = threading.Lock()
        self.gone = threading.Event()
        self.pong = True
        self.budget = Budget(BURST, RATE)
        self.message_bytes = 0
        self.closing_since: float | None = None
        self.drained = 0
        self.reader = threading.Thread(target=self._read, name="ws-read", daemon=True)

    def start(self) -> None:
        self.reader.start()

    # -- the sending side (the request's thread) ------------------------------------------

    def send(self, text: str) -> bool:
        """Send one text frame; False when the connection is over."""
        return self._write(TextMessage(data=text))

    def ping(self) -> bool:
        """Ping the client, or close it if the last ping got no answer (it has gone
        without a word). False when the connection is over."""
        if not self.pong:
            self.close(GOING_AWAY, "no answer to ping")
            return False
        self.pong = False
        return self._write(Ping())

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (once; never raises): our close frame, then the
        client's answer is waited for by the reader, CLOSE_WAIT_S at most."""
        with self.lock:
            if self.conn.state is not ConnectionState.OPEN:
                return
            try:
                data = self.conn.send(CloseConnection(code=code, reason=reason))
            except LocalProtocolError:  # a code wsproto will not send: end without one
                self._end()
                return
            self.closing_since = time.monotonic()
            self._raw_write(data)

    def finish(self) -> None:
        """End the connection from the request's thread: close it if still open, let the
        reader see the handshake through (bounded), and free the socket."""
        self.close(NORMAL)
        self.reader.join(CLOSE_WAIT_S + WAIT_S)
        self._end()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _write(self, event: Event) -> bool:
        with self.lock:
            if self.gone.is_set() or self.conn.state is not ConnectionState.OPEN:
                return False
            return self._raw_write(self.conn.send(event))

    def _raw_write(self, data: bytes) -> bool:
        # under self.lock; a client that left (EPIPE, reset) or takes nothing (timeout)
        # ends the connection: a frame cut halfway cannot be followed by another
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self._end()
            return False

    def _end(self) -> None:
        if not self.gone.is_set():
            self.gone.set()
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # the client sees the end now

    # -- the reading side (its own thread) ------------------------------------------------

    def _read(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while not self.gone.is_set():
                if self._closing_timed_out():
                    break
                pending = getattr(self.sock, "pending", None)  # TLS: bytes already decrypted
                if not (pending and pending()) and not sel.select(WAIT_S):
                    continue
                try:
                    data = self.sock.recv(READ_BYTES)
                except (BlockingIOError, TimeoutError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    data = b""
                if not data or not self._take(data):
                    break
        self._end()

    def _closing_timed_out(self) -> bool:
        since = self.closing_since
        return since is not None and (
            time.monotonic() - since > CLOSE_WAIT_S or self.drained > CLOSE_DRAIN
        )

    def _take(self, data: bytes) -> bool:
        """Handle what the client sent; False when the connection is over."""
        with self.lock:
            if self.closing_since is not None:
                self.drained += len(data)
            try:
                self.conn.receive_data(data)
                out, verdict = self._handle(list(self.conn.events()))
            except LocalProtocolError:  # data after the close handshake
                return False
            if out and not self._raw_write(out):
                return False
        if verdict is not None:
            self.close(*verdict)
        return self.conn.state is not ConnectionState.CLOSED

    def _handle(self, events: list[Event]) -> tuple[bytes, tuple[int, str] | None]:
        """(what to answer, (close code, reason) if the client broke the budget)."""
        out = b""
        for event in events:
            if isinstance(event, CloseConnection):
                if self.conn.state is ConnectionState.REMOTE_CLOSING:
                    out += self.conn.send(event.response())  # the client's close: answered
                elif self.conn.state is ConnectionState.OPEN:  # a frame wsproto refused
                    return out, (event.code, "")
                return out, None
            if self.closing_since is not None:
                continue  # closing: what it still sends is dropped unread
            if isinstance(event, TextMessage | BytesMessage):
                size = len(event.data.encode()) if isinstance(event.data, str) else len(event.data)
                self.message_bytes += size
                if self.message_bytes > MAX_MESSAGE:
                    return out, (TOO_BIG, f"messages are limited to {MAX_MESSAGE} bytes")
                if event.message_finished:
                    self.message_bytes = 0
                if not event.frame_finished:
                    continue  # a frame counts once, when it is whole
            elif isinstance(event, Ping):
                out += self.conn.send(event.response())
            elif isinstance(event, Pong):
                self.pong = True
            if not self.budget.take():
                return out, (POLICY, "too many messages: this stream only speaks")
        return out, None


def _check_upgrade() -> str:
    """The client's Sec-WebSocket-Key, once its upgrade request is checked (RFC 6455
    section 4.2.1); a wrong one is an ApiError, answered as JSON before any upgrade."""
    headers = request.headers
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in (
        t.strip().lower() for t in headers.get("Connection", "").split(",")
    ):
        raise ApiError(400, "bad_request", "this route speaks WebSocket only (Upgrade: websocket)")
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        raise ApiError(
            426,
            "upgrade_required",
            "Sec-WebSocket-Version: must be 13",
            {"Sec-WebSocket-Version": "13"},
        )
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        ok = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ApiError(400, "bad_request", "Sec-WebSocket-Key: must be 16 bytes in base64")
    return key


def _upgrade(environ: dict[str, Any], key: str) -> tuple[socket.socket, str]:
    """Take the connection's socket from the server (gunicorn's or Werkzeug's), answer the
    handshake on it (no extension, no subprotocol), and name the server."""
    for mode in ("gunicorn", "werkzeug"):
        sock = environ.get(f"{mode}.socket")
        if isinstance(sock, socket.socket):
            sock.settimeout(SEND_S)
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + generate_accept_token(key.encode())
                + b"\r\n\r\n"
            )
            return sock, mode
    raise ApiError(501, "not_implemented", "this server cannot hand a connection to a WebSocket")


# websocket=True: Werkzeug routes a request carrying "Upgrade: websocket" only to such rules
@bp.route("/api/v1/ws", methods=["GET"], websocket=True)
def ws() -> Response:
    key = _check_upgrade()
    after = params.integer("after", None, 0)
    last = after if after is not None else queries.last_event_id()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    b = stream.subscribe(app)  # a socket holds a worker thread as a stream does
    try:
        sock, mode = _upgrade(request.environ, key)
        peer = Peer(sock)
        peer.start()
        try:
            _serve(app, peer, last)
        finally:
            peer.finish()
    finally:
        b.unsubscribe()
    return _Done(mode)


def _serve(app: Flask, peer: Peer, last: int) -> None:
    b = stream.broadcaster(app)  # subscribed by ws(), which unsubscribes
    next_ping = time.monotonic() + PING_S
    while not peer.gone.is_set():
        if STOPPING.is_set():  # the worker is stopping: reconnect, to another if there is
            peer.close(GOING_AWAY, "server stopping; resume with ?after=")
            return
        items = b.after(last, WAIT_S)
        if items is None:
            try:
                items = stream.backlog(last)
            except ApiError:
                peer.close(TRY_AGAIN, "database unavailable; resume with ?after=")
                return
            if not items:
                last = max(last, b.complete_after or last)
                continue
        for event in items:
            if event.id > last:
                if not peer.send(event.frame):
                    return
                last = event.id
        if time.monotonic() >= next_ping:
            if not peer.ping():
                return
            next_ping = time.monotonic() + PING_S
