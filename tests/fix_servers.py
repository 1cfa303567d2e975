"""Real servers on 127.0.0.1 for the tests: a switchable HTTP target, the one scripted
HTTP server (any answer a test needs: JSON APIs, webhook receivers, an OpenAI-compatible
endpoint), a hanging TCP listener, a DNS server, an SMTP server (aiosmtpd), a self-signed
certificate; and the ``target`` fixture."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage as Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


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
                    target.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "at": time.monotonic(),
                        }
                    )
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


class DnsServer:
    """A UDP DNS server on 127.0.0.1 that knows a few A records (NXDOMAIN for the rest);
    ``silent`` makes it swallow every query (a server that cannot be reached)."""

    def __init__(self, records: dict[str, str], silent: bool = False) -> None:
        import dns.message
        import dns.rcode
        import dns.rrset

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = threading.Event()

        def serve() -> None:
            while not self.stop_flag.is_set():
                try:
                    data, addr = self.sock.recvfrom(4096)
                except (TimeoutError, OSError):
                    continue
                if silent:
                    continue
                query = dns.message.from_wire(data)
                resp = dns.message.make_response(query)
                q = query.question[0]
                name = q.name.to_text().rstrip(".")
                if name in records:
                    resp.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", records[name]))
                else:
                    resp.set_rcode(dns.rcode.NXDOMAIN)
                self.sock.sendto(resp.to_wire(), addr)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop_flag.set()
        self.thread.join()
        self.sock.close()


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes


class Scripted:
    """The one scripted HTTP server of the tests: on ``host``, each request is answered by
    ``answer(request) -> (status, headers, body)``, and every request is recorded."""

    def __init__(
        self,
        answer: Callable[[Request], Answer],
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with outer.lock:
                    outer.requests.append(
                        {
                            "method": req.method,
                            "path": req.path,
                            "headers": req.headers,
                            "body": body,
                        }
                    )
                code, headers, payload = answer(req)
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _any  # noqa: N815

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"{'https' if tls else 'http'}://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, on its own thread): keeps every message
    it accepts, parsed."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from healthd.local.embedded import free_port

        self.messages: list[Message] = []
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
                with outer.lock:
                    outer.messages.append(parsed)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def mails(self) -> list[tuple[str, str, str]]:
        """(to, subject, plain-text body) of each message, oldest first."""
        with self.lock:
            out = []
            for m in self.messages:
                part = m.get_body(("plain", "html"))
                text = part.get_content() if part is not None else ""
                out.append((str(m["To"]), str(m["Subject"]), str(text)))
            return out

    def close(self) -> None:
        self.controller.stop()


def json_answer(code: int, body: Any) -> Answer:
    return code, {"Content-Type": "application/json"}, json.dumps(body).encode()


class FakeOpenAI(Scripted):
    """An OpenAI-compatible /v1/models that checks the bearer key."""

    def __init__(self, key: str, models: tuple[str, ...] = ("gpt-test", "embed-test")) -> None:
        self.key = key
        self.rate_limited = False
        self.models = models
        super().__init__(self._answer)
        self.endpoint = f"{self.base}/v1"

    def _answer(self, req: Request) -> Answer:
        if req.path != "/v1/models":
            return json_answer(404, {"error": {"message": "not found"}})
        given = req.headers.get("authorization", "")
        if given != f"Bearer {self.key}":
            return json_answer(
                401, {"error": {"message": f"Incorrect API key provided: {given[7:]}"}}
            )
        if self.rate_limited:
            return json_answer(429, {"error": {"message": "Rate limit reached for requests"}})
        return json_answer(
            200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        )


def make_cert(directory: Path, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 valid for ``days`` days (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def target() -> Iterator[Target]:
    """A switchable HTTP server of this test's own."""
    t = Target()
    yield t
    t.close()
