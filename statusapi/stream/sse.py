"""GET /api/v1/stream: Server-Sent Events, one per history row, resumable by id.

The API never LISTENs (it must work against a hot standby with a read-only role), so
one thread per worker process tails status_history by id while anyone is subscribed,
keeps the newest events in a ring, and wakes every subscriber. However many clients are
connected, the database sees one small indexed query per poll per worker. A subscriber
that falls behind the ring, or resumes with Last-Event-ID, reads its backlog from the
table, so nothing is missed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from healthd.core.words import TRANSITION
from statusapi.data import queries, shapes
from statusapi.web import params
from statusapi.web.errors import ApiError
from statusapi.web.render import dumps
from statusapi.web.stopping import STOPPING

log = logging.getLogger(__name__)
bp = Blueprint("stream", __name__)

RING = 5000
PAGE = 500
GONE_CHECK = 1.0  # seconds between looks at whether a quiet stream's client is still there


class Broadcaster:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.cond = threading.Condition()
        self.ring: deque[Event] = deque(maxlen=RING)
        self.complete_after: int | None = None  # the ring holds every event with id > this
        self.head = 0
        self.subscribers = 0
        self.thread: threading.Thread | None = None

    def subscribe(self) -> None:
        with self.cond:
            self.subscribers += 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="sse-tail", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def unsubscribe(self) -> None:
        with self.cond:
            self.subscribers -= 1

    def try_subscribe(self, limit: int) -> bool:
        """subscribe() unless ``limit`` subscribers are already here (False, nothing done)."""
        with self.cond:  # an RLock: the check and subscribe() are one step
            if self.subscribers >= limit:
                return False
            self.subscribe()
            return True

    def after(self, last: int, timeout: float) -> list[Event] | None:
        """Events with id > last (waiting up to ``timeout``); None when the ring no longer
        covers ``last`` and the caller must read the table."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.complete_after is None or last < self.complete_after:
                    if self.complete_after is not None:
                        return None
                elif self.head > last:
                    return [e for e in self.ring if e.id > last]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.cond.wait(left)

    def _run(self) -> None:
        poll = self.app.config["STREAM_POLL"]
        backoff = poll
        with self.app.app_context():
            while True:
                with self.cond:
                    if self.subscribers <= 0:
                        # nobody listening: forget the position, so a later start re-anchors
                        self.complete_after = None
                        self.thread = None
                        return
                try:
                    self._poll()
                    backoff = poll
                except ApiError:
                    backoff = min(backoff * 2, 5.0)
                time.sleep(backoff)

    def _poll(self) -> None:
        if self.complete_after is None:
            head = queries.last_event_id()
            with self.cond:
                self.complete_after = self.head = head
                self.ring.clear()
                self.cond.notify_all()
            return
        rows = queries.events_after(self.head, PAGE)
        if not rows:
            return
        with self.cond:
            for r in rows:
                if len(self.ring) == self.ring.maxlen:
                    self.complete_after = self.ring[0].id
                self.ring.append(Event.of(r))
            self.head = rows[-1]["id"]
            self.cond.notify_all()


# Line breaks JSON may carry raw inside a string (orjson leaves them so) that readers
# splitting on every Unicode line break (Python's str.splitlines, some SSE clients) would
# cut a data: line at. The SSE format itself ends lines at CR and LF only, which orjson
# always escapes; these are escaped too, so no reader can see a line end in the data.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})


@dataclass(frozen=True)
class Event:
    """One history row as the streams send it, rendered from the row, never re-read from
    another rendering: ``sse`` for /api/v1/stream and ``frame`` for /api/v1/ws carry the
    same id, event name and data."""

    id: int
    kind: str  # the SSE event name: "status" (a transition) or "flapping"
    data: str  # the row's JSON (shapes.event), with no line break left raw

    @classmethod
    def of(cls, row: dict[str, Any]) -> Event:
        kind = "status" if row["event"] == TRANSITION else "flapping"
        return cls(int(row["id"]), kind, dumps(shapes.event(row)).translate(_LINE_BREAKS))

    # rendered once per event, however many clients it goes to (the ring keeps both)
    @cached_property
    def sse(self) -> str:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n"

    @cached_property
    def frame(self) -> str:
        """The WebSocket text frame: {"id", "event", "data"}."""
        return f'{{"id":{self.id},"event":"{self.kind}","data":{self.data}}}'


def broadcaster(app: Flask) -> Broadcaster:
    b = app.extensions.get("healthd_broadcaster")
    if b is None:
        b = app.extensions.setdefault("healthd_broadcaster", Broadcaster(app))
    assert isinstance(b, Broadcaster)
    return b


def subscribe(app: Flask) -> Broadcaster:
    """Take a subscriber's place in this worker's broadcaster (SSE and WebSocket count
    together), or answer 503: each subscriber holds a thread of this worker for as long as
    it listens, and past the cap the others are kept for /healthz and ordinary requests.
    The caller must ``unsubscribe`` when done."""
    b = broadcaster(app)
    cap = app.config["STREAM_MAX"]
    if not b.try_subscribe(cap):
        raise ApiError(
            503,
            "too_many_streams",
            f"this worker already serves {cap} streams; try again shortly",
            {"Retry-After": "10"},
        )
    return b


def _resume_id() -> int | None:
    # ?after= too: a browser's EventSource cannot send Last-Event-ID on its first connect;
    # the header still wins, as the browser sends it on reconnecting to the same URL. Each
    # one given is checked, the unused ones too: a bad ?after= is a 400 with or without
    # the header, as the OpenAPI document says.
    after = params.integer("after", None, 0)
    legacy = params.integer("last_event_id", None, 0)
    header = _header_id()
    return next((v for v in (header, legacy, after) if v is not None), None)


def _header_id() -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if not raw:  # EventSource sends none until it has seen an id
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, "bad_parameter", "Last-Event-ID: must be an event id (an integer)"
        ) from None
    if not 0 <= value <= params.BIGINT_MAX:
        raise ApiError(400, "bad_parameter", "Last-Event-ID: must be between 0 and 2^63-1")
    return value


@bp.get("/api/v1/stream")
def stream() -> Response:
    resume = _resume_id()
    last = (
        resume if resume is not None else queries.last_event_id()
    )  # 503 now if the database is down
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sub = _Subscription(subscribe(app))
    resp = Response(
        _events(app, last, sub, request.environ.get("gunicorn.socket")),
        mimetype="text/event-stream",
    )
    # a response never iterated (the client left before the first byte) still releases
    resp.call_on_close(sub.release)
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return resp


class _Subscription:
    def __init__(self, b: Broadcaster) -> None:
        self.b = b
        self._lock = threading.Lock()
        self.released = False

    def release(self) -> None:
        with self._lock:
            if self.released:
                return
            self.released = True
        self.b.unsubscribe()


def backlog(last: int) -> list[Event]:
    """One page of events after ``last`` from the table (a client behind the ring): never
    the whole backlog in memory (a Last-Event-ID: 0 client of a long history)."""
    return [Event.of(r) for r in queries.events_after(last, PAGE)]


def client_gone(sock: Any) -> bool:
    """The client closed its end: the socket reads as EOF. (Writing to it would say so
    too, but only at the next keepalive, 15 s later; a stream holds a thread till then.)"""
    if sock is None:
        return False
    try:
        # a peek that never blocks: nothing to read (BlockingIOError) or a byte of a
        # pipelined request means still there; b"" is the client's FIN
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"")
    except (BlockingIOError, ValueError):
        return False  # ValueError: a TLS socket takes no recv flags; the next write tells
    except OSError:
        return True


def _events(app: Flask, last: int, sub: _Subscription, sock: Any = None) -> Iterator[str]:
    keepalive = app.config["STREAM_KEEPALIVE"]
    b = sub.b
    with app.app_context():
        try:
            yield "retry: 3000\n: connected\n\n"
            quiet_since = time.monotonic()
            # a stopping worker ends the stream: the client reconnects with Last-Event-ID
            while not client_gone(sock) and not STOPPING.is_set():
                items = b.after(last, min(GONE_CHECK, keepalive))
                if items is None:
                    # behind the ring: one page from the table at a time, never the whole
                    # backlog in memory (a Last-Event-ID: 0 client of a long history)
                    try:
                        items = backlog(last)
                    except ApiError:
                        return  # database gone: the client reconnects with Last-Event-ID
                    if not items:
                        # the table has nothing newer than the ring's start: continue from it
                        last = max(last, b.complete_after or last)
                        continue
                if not items:
                    if time.monotonic() - quiet_since >= keepalive:
                        quiet_since = time.monotonic()
                        yield ": keepalive\n\n"
                    continue
                for event in items:
                    if event.id > last:
                        last = event.id
                        yield event.sse
                quiet_since = time.monotonic()
        finally:
            sub.release()
