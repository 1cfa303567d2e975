"""The HTTP engine (healthd/http/engine.py) against real local servers: each slow phase
shows in its own phase, every probe opens its own connection, no proxy is taken from the
environment, and a real daemon's phases reach the rollups, the API, the metrics and
`healthd probe`."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from healthd import plugins
from healthd.core.phases import NAMES
from healthd.plugins import httpclient
from healthd.plugins.base import ProbeResult
from statusapi import create_app
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target, make_cert

DELAY = 0.4  # seconds a server stalls in the phase under test
OTHERS = 0.25  # every other phase stays well under the stall, even on a loaded machine


def probe(config: dict[str, Any], timeout: float = 5.0) -> ProbeResult:
    async def go() -> ProbeResult:
        plugin = plugins.create("http", config)
        try:
            return await plugins.run_check(plugin, timeout)
        finally:
            await plugin.close()
            await httpclient.close_session()

    return asyncio.run(go())


def phase_ms(r: ProbeResult) -> dict[str, float]:
    assert r.phases is not None, r
    return dict(zip(NAMES, r.phases, strict=True))


def only_slow(r: ProbeResult, slow: str) -> None:
    got = phase_ms(r)
    assert got[slow] >= DELAY * 1000 * 0.95, got
    for name, ms in got.items():
        if name != slow:
            assert ms < OTHERS * 1000, (name, got)
    assert r.latency_ms is not None and r.latency_ms >= sum(got.values()) * 0.95


class Scripted:
    """An HTTP server whose handler is given: (handler, path) -> None."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(h: BaseHTTPRequestHandler, body: bytes = b"ok") -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], Scripted]]:
    made: list[Scripted] = []

    def make(answer: Callable[[BaseHTTPRequestHandler], None]) -> Scripted:
        made.append(Scripted(answer))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_slow_first_byte_shows_in_processing(scripted: Any) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(DELAY)
        ok(h)

    r = probe({"url": scripted(slow).url + "/"})
    assert r.ok and r.message == "HTTP 200", r
    only_slow(r, "processing")


def test_a_slow_body_shows_in_transfer(scripted: Any) -> None:
    def dribble(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "4")
        h.end_headers()
        h.wfile.write(b"ok")
        h.wfile.flush()
        time.sleep(DELAY)
        h.wfile.write(b"ok")

    r = probe({"url": scripted(dribble).url + "/", "body_contains": "okok"})
    assert r.ok, r
    only_slow(r, "transfer")


def test_phases_add_up_over_redirects(scripted: Any) -> None:
    """Each hop's phases are added, as blackbox_exporter adds them."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        time.sleep(DELAY)
        if h.path == "/start":
            h.send_response(302)
            h.send_header("Location", "/end")
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            ok(h)

    r = probe({"url": scripted(answer).url + "/start"})
    assert r.ok, r
    assert phase_ms(r)["processing"] >= 2 * DELAY * 1000 * 0.95


@pytest.fixture(scope="module")
def slow_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A TLS server that waits DELAY s after accepting before it answers the handshake
    (the client's hello sits unread meanwhile), then answers 200."""
    cert, key = make_cert(tmp_path_factory.mktemp("slowtls"), days=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        try:
            time.sleep(DELAY)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"https://127.0.0.1:{port}/", cert
    stop.set()
    listener.close()


def test_a_slow_tls_handshake_shows_in_the_tls_phase(slow_tls: tuple[str, Path]) -> None:
    url, cert = slow_tls
    r = probe({"url": url, "ca_file": str(cert), "cert_expiry_days": 7})
    assert r.ok and r.message == "HTTP 200", r
    only_slow(r, "tls")


def test_a_plain_http_probe_has_no_tls_time(scripted: Any) -> None:
    r = probe({"url": scripted(ok).url + "/"})
    got = phase_ms(r)
    assert r.ok and got["tls"] == 0.0 and got["connect"] > 0, got


def test_failures_carry_no_phases() -> None:
    from healthd.local.embedded import free_port

    r = probe({"url": f"http://127.0.0.1:{free_port()}/"})
    assert r.status == "disconnected" and r.phases is None


def test_every_probe_opens_its_own_connection() -> None:
    """Three probes of one source and one of another, on one loop: four connections
    accepted by the server (a pooled keep-alive connection would hide a listener that
    stopped accepting)."""
    accepted: list[int] = []

    class Counting(ThreadingHTTPServer):
        def get_request(self) -> tuple[socket.socket, Any]:
            conn, addr = super().get_request()
            accepted.append(addr[1])
            return conn, addr

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the server would keep the connection open

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            ok(self)

    srv = Counting(("127.0.0.1", 0), KeepAlive)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"

    async def four() -> list[ProbeResult]:
        one, two = plugins.create("http", {"url": url}), plugins.create("http", {"url": url})
        try:
            return [await plugins.run_check(p, 2.0) for p in (one, one, one, two)]
        finally:
            await httpclient.close_session()

    try:
        results = asyncio.run(four())
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.status for r in results] == ["connected"] * 4
    assert len(accepted) == 4 and len(set(accepted)) == 4


def test_no_proxy_is_taken_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, scripted: Any
) -> None:
    """libcurl reads http_proxy / HTTPS_PROXY / ALL_PROXY by itself; a probe must go to
    the URL it names, not to whatever proxy the daemon's environment mentions."""
    via_proxy: list[str] = []

    def proxy(h: BaseHTTPRequestHandler) -> None:
        via_proxy.append(h.path)
        ok(h, b"proxied")

    proxy_url = scripted(proxy).url
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy_url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    target = scripted(lambda h: ok(h, b"direct"))
    r = probe({"url": target.url + "/", "body_contains": "direct"})
    assert r.ok, r
    assert via_proxy == []


def test_a_header_with_a_line_break_is_refused_not_sent(scripted: Any) -> None:
    seen: list[dict[str, str]] = []

    def record(h: BaseHTTPRequestHandler) -> None:
        seen.append(dict(h.headers))
        ok(h)

    url = scripted(record).url + "/"
    r = probe({"url": url, "headers": {"X-A": "1\r\nX-Injected: yes"}})
    assert r.status == "error" and "line break" in r.message and seen == []


# -- a real daemon: rollups, the API, the metrics, `healthd probe` -----------------------


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": db_url})
    yield app.test_client()
    app.extensions["healthd_pool"].close()


def test_a_daemons_phases_reach_the_rollups_the_api_and_the_metrics(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, client: FlaskClient
) -> None:
    target = Target()
    try:
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', %s)",
            (json.dumps({"url": target.url}),),
        )
        daemon = DaemonProcess(db_url, tmp_path / "daemon.log", HEALTHD_INTERVAL="0.3")
        try:
            wait_for(lambda: target.count("ok") >= 4, what="a few probes")

            def published() -> dict[str, Any] | None:
                row = db.execute("SELECT metrics FROM daemon_nodes").fetchone()
                return (row[0] or {}).get("probe_phase") if row else None

            wait_for(lambda: bool(published()), timeout=30, what="a heartbeat with phases")
            text = client.get("/metrics").get_data(as_text=True)
        finally:
            assert daemon.stop() == 0
    finally:
        target.close()
    counts = [
        x for x in text.splitlines() if x.startswith("healthd_daemon_probe_phase_seconds_count{")
    ]
    for name in NAMES:
        assert any(f'phase="{name}"' in x and 'plugin="http"' in x for x in counts), counts
    count, phased, *sums = db.execute(
        "SELECT sum(count), sum(phased), sum(resolve_ms_sum), sum(connect_ms_sum),"
        " sum(tls_ms_sum), sum(processing_ms_sum), sum(transfer_ms_sum)"
        " FROM latency_rollups WHERE source_id = 'web'"
    ).fetchone()
    assert count == phased >= 4  # every probe answered, every one timed
    assert sums[1] > 0 and sums[3] > 0 and sums[2] == 0  # connect, processing; no TLS
    body = client.get("/api/v1/sources/web/latency?window=1h").get_json()
    timed = [b for b in body["buckets"] if b["phases"]]
    assert timed, body
    assert set(timed[0]["phases"]) == {f"{n}_ms" for n in NAMES}
    assert timed[0]["phases"]["processing_ms"] > 0


def test_probe_prints_the_phases(healthd_cli: Any) -> None:
    target = Target()
    try:
        cfg = json.dumps({"url": target.url})
        r = healthd_cli("probe", "--plugin", "http", "--config", cfg)
        assert r.returncode == 0, r.stderr
        first, second = r.stdout.splitlines()[:2]
        assert first.startswith("http: connected")
        assert second.startswith("  phases: resolve ") and "processing" in second
        out = json.loads(healthd_cli("probe", "--plugin", "http", "--config", cfg, "--json").stdout)
        assert set(out["phases"]) == {f"{n}_ms" for n in NAMES}
    finally:
        target.close()
