"""nginx and blackbox_exporter on 127.0.0.1 for the benchmarks (Debian packages)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from healthd.local.embedded import free_port


def _wait_port(port: int, deadline_s: float = 10) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def _serving(cmd: list[str], port: int, workdir: Path) -> Iterator[None]:
    """Run a server until the block ends, then stop it and remove its directory."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


# each request's end as epoch seconds with milliseconds, then its URI (the source's id
# rides in the query): what bench_workers.py reads each source's gaps from
LOG_FORMAT = "log_format probes '$msec $request_uri';"


@contextlib.contextmanager
def nginx(
    workers: int = 1, access_log: Path | None = None, buffered: bool = False
) -> Iterator[int]:
    """nginx answering 200 "ok" to everything; ``access_log``: every request's end time
    and URI logged there (``buffered``: written in 256 kB blocks at most 1 s late, which
    spares nginx a write per request; read the times, not the line count, then)."""
    if not shutil.which("nginx"):
        raise SystemExit("nginx is needed: apt-get install nginx")
    d = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    port = free_port()
    buffering = " buffer=256k flush=1s" if buffered else ""
    (d / "nginx.conf").write_text(f"""
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  {LOG_FORMAT}
  {f"access_log {access_log} probes{buffering};" if access_log else "access_log off;"}
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{port} reuseport backlog=8192; location / {{ return 200 "ok"; }} }}
}}
""")
    with _serving(["nginx", "-c", str(d / "nginx.conf"), "-g", "daemon off;"], port, d):
        yield port


@contextlib.contextmanager
def blackbox() -> Iterator[int]:
    exe = shutil.which("prometheus-blackbox-exporter")
    if not exe:
        raise SystemExit(
            "blackbox_exporter is needed: apt-get install prometheus-blackbox-exporter"
        )
    d = Path(tempfile.mkdtemp(prefix="bench-bb-"))
    (d / "bb.yml").write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
        "    http:\n      preferred_ip_protocol: ip4\n"
    )
    port = free_port()
    with _serving(
        [exe, f"--config.file={d / 'bb.yml'}", f"--web.listen-address=127.0.0.1:{port}"], port, d
    ):
        yield port


def wrk(url: str, seconds: int = 10, connections: int = 64, threads: int = 2) -> float:
    """Requests/s that wrk measured."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)
