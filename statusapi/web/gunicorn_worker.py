"""gunicorn's gthread worker, answering in JSON what gunicorn answers itself.

A request gunicorn refuses before the application sees it (a request line over
``limit_request_line``: 414; a header over ``limit_request_field_size`` or too many: 431;
a malformed request line or header: 400) gets gunicorn's own error page, which is HTML.
Every answer a client can provoke is JSON here, so the writer of those pages is replaced
in the worker process with one writing the API's error shape.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from statusapi.web.stopping import STOPPING

CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def json_error(status: int, reason: str, message: str) -> bytes:
    body = json.dumps(
        {"error": {"code": CODES.get(status, "error"), "message": f"{reason}: {message[:200]}"}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_error(status_int, reason, mesg or reason))


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]
    def init_process(self) -> Any:
        # gunicorn calls util.write_error by module attribute from handle_error
        util.write_error = write_error
        return super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        # SIGTERM: the streams end now (statusapi/web/stopping.py), not at graceful_timeout
        STOPPING.set()
        super().handle_exit(sig, frame)
