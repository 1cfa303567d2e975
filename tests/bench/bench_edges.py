"""Issue 10's edge measurements, one command: `python tests/bench/bench_edges.py`.

- SSE: peak Python memory (tracemalloc) until the 600th event of a `Last-Event-ID: 0`
  stream over 20,000 history rows of 2 kB (Flask's test client, a throwaway PostgreSQL).
- ai-service: peak memory of one probe of a server answering 64 MiB.
- Gone client: seconds until a closed stream's slot is free again (gunicorn, 1 worker,
  4 threads, so a cap of 2 streams).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from healthd import plugins  # noqa: E402
from healthd.local import embedded  # noqa: E402
from healthd.plugins import httpclient  # noqa: E402
from healthd.store import migrate  # noqa: E402
from statusapi import create_app  # noqa: E402
from tests.fix_procs import Gunicorn  # noqa: E402


def sse_backlog_peak(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, error_message)"
            " SELECT 'web', 'connected', 'error', repeat('x', 2000)"
            " FROM generate_series(1, 20000)"
        )
    app = create_app({"DATABASE_URL": url, "TESTING": True, "STREAM_KEEPALIVE": 1})
    tracemalloc.start()
    resp = app.test_client().get("/api/v1/stream", headers={"Last-Event-ID": "0"}, buffered=False)
    seen = 0
    for chunk in resp.response:  # type: ignore[attr-defined]
        seen += chunk.count(b"\nevent: status\n") if isinstance(chunk, bytes) else 0
        if seen >= 600:
            break
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    resp.close()
    app.extensions["healthd_pool"].close()
    return peak


def ai_service_peak() -> tuple[str, float]:
    class Huge(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"x" * (1 << 20))
            except OSError:
                pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Huge)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    async def go() -> plugins.ProbeResult:
        endpoint = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        p = plugins.create("ai-service", {"endpoint": endpoint, "api_key": "k"})
        try:
            return await plugins.run_check(p, 20)
        finally:
            await httpclient.close_session()

    tracemalloc.start()
    r = asyncio.run(go())
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    srv.shutdown()
    return r.message, peak


def _stream(port: int, keep: bool) -> tuple[bytes, socket.socket]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    close = b"" if keep else b"Connection: close\r\n"
    s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n")
    data = s.recv(4096)
    while keep and b": connected" not in data:
        data += s.recv(4096)
    return data[9:12], s


def gone_client_seconds(url: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        g = Gunicorn(url, Path(tmp) / "g.log", workers=1, STATUSAPI_THREADS="4")
        try:
            _, a = _stream(g.port, True)
            _, b = _stream(g.port, True)
            time.sleep(1.5)  # both streams settled in their wait, as a long-lived one is
            b.close()
            started = time.monotonic()
            while True:
                code, s = _stream(g.port, False)
                s.close()
                if code == b"200":
                    break
                time.sleep(0.05)
            a.close()
            return time.monotonic() - started
        finally:
            g.stop()


def main() -> None:
    with embedded.throwaway("bench-edges-") as cluster:
        migrate.apply(cluster.url())
        print(f"SSE backlog, peak to the 600th event: {sse_backlog_peak(cluster.url()):.1f} MiB")
        message, peak = ai_service_peak()
        print(f"ai-service, 64 MiB answer: {peak:.1f} MiB peak ({message})")
        print(f"gone client's slot free after {gone_client_seconds(cluster.url()):.2f} s")


if __name__ == "__main__":
    main()
