"""Real servers on 127.0.0.1 for the tests: a switchable HTTP target, a hanging TCP
listener, and the real `healthd run` as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Target:
    """An HTTP server whose answer can be switched: ok (200), fail (500), alternate
    (200/500 by turns), hang (never answers). Counts answers by kind."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "fail": 0}
        self.requests: list[dict[str, Any]] = []
        self._flip = False
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                with target.lock:
                    mode = target.mode
                    if mode == "alternate":
                        target._flip = not target._flip
                        mode = "ok" if target._flip else "fail"
                    if mode in target.counts:
                        target.counts[mode] += 1
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    target.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if mode == "hang":
                    time.sleep(30)
                    return
                code = 200 if mode == "ok" else 500
                payload = b'{"ok": true}' if code == 200 else b"boom"
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            self.counts = {"ok": 0, "fail": 0}

    def count(self, kind: str) -> int:
        with self.lock:
            return self.counts[kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def hanging_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


class DaemonProcess:
    """`healthd run` as a subprocess, its stderr in a file the test can read."""

    def __init__(self, db_url: str, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        defaults = {"HEALTHD_INTERVAL": "1", "HEALTHD_RISE": "3", "HEALTHD_FALL": "3",
                    "HEALTHD_TIMEOUT": "2"}
        full = {**os.environ, **defaults, "HEALTHD_DATABASE_URL": db_url, **env}
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "healthd", "run"], env=full,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()
        return rc
