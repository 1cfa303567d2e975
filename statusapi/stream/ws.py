"""GET /api/v1/ws: the stream's events over a WebSocket, as JSON text frames
{"id", "event", "data"} (the same id, event name and data as the SSE stream, both
rendered from the event by sse.Event, never one from the other's text), resumable
with ?after=ID. Fed by the SSE stream's per-worker broadcaster: one tail of the history
table per worker, however many clients listen on either.

simple-websocket (the engine under flask-sock and Flask-SocketIO, maintained by Flask's
long-time contributor) takes the connection's socket from gunicorn's environ and runs
with plain threads, so it works under our gthread workers and psycopg's blocking driver
without monkey-patching. It is used directly rather than through flask-sock's decorator
so that a bad ?after= is answered as a JSON 400 before the upgrade, not after it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from simple_websocket import ConnectionClosed, Server  # type: ignore[import-untyped]

from statusapi.data import queries
from statusapi.stream import sse as stream
from statusapi.web import params
from statusapi.web.errors import ApiError

bp = Blueprint("ws", __name__)

PING_S = 25  # keeps proxies from timing the connection out, and finds clients that left
WAIT_S = 1.0  # how often a quiet connection checks that its client is still there


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


# websocket=True: Werkzeug routes a request carrying "Upgrade: websocket" only to such rules
@bp.route("/api/v1/ws", methods=["GET"], websocket=True)
def ws() -> Response:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(400, "bad_request", "this route speaks WebSocket only (Upgrade: websocket)")
    after = params.integer("after", None, 0)
    last = after if after is not None else queries.last_event_id()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    b = stream.subscribe(app)  # a socket holds a worker thread as a stream does
    try:
        sock = Server(request.environ, ping_interval=PING_S, max_message_size=4096)
        try:
            _serve(app, sock, last)
        except ConnectionClosed:
            pass
        finally:
            sock.close()
    finally:
        b.unsubscribe()
    return _Done(sock.mode)


def _serve(app: Flask, sock: Server, last: int) -> None:
    b = stream.broadcaster(app)  # subscribed by ws(), which unsubscribes
    while sock.connected:
        items = b.after(last, WAIT_S)
        if items is None:
            try:
                items = stream.backlog(last)
            except ApiError:
                return  # database gone: the client reconnects with ?after=
            if not items:
                last = max(last, b.complete_after or last)
                continue
        for event in items:
            if event.id > last:
                sock.send(event.frame)
                last = event.id
