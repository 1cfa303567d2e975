"""P5-P8: statusapi against the bare Flask+psycopg app, SSE latency and fan-out.

Run: python tests/bench/bench_api.py
Needs Debian's wrk. Both apps run under gunicorn with the same settings (deploy/gunicorn.conf.py,
2 workers) against the same database in the same run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from _cluster import migrated_database  # noqa: E402
from _servers import wrk  # noqa: E402

from healthd.config.sources import SourceSpec  # noqa: E402
from healthd.local.embedded import free_port  # noqa: E402
from healthd.store import catalog  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CEILINGS = ROOT.parent / "shared" / "tools" / "ceilings"


def start(
    app: str, url: str, cwd: Path, workers: int | None = 2, threads: int | None = None
) -> tuple[object, int]:
    """gunicorn with deploy/gunicorn.conf.py; None keeps the shipped default."""
    import subprocess

    port = free_port()
    env = {
        **os.environ,
        "DSN": url,
        "STATUSAPI_DATABASE_URL": url,
        "STATUSAPI_ACCESS_LOG": "",
    }
    for name in ("STATUSAPI_WORKERS", "STATUSAPI_THREADS"):
        env.pop(name, None)
    if workers is not None:
        env["STATUSAPI_WORKERS"] = str(workers)
    if threads is not None:
        env["STATUSAPI_THREADS"] = str(threads)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "-b",
            f"127.0.0.1:{port}",
            app,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
    return proc, port


async def sse_latency(port: int, url: str, events: int) -> list[float]:
    lat: list[float] = []
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/api/v1/stream") as r:
        await r.content.readline()
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        for _ in range(events):
            await conn.execute(
                "INSERT INTO status_history (source_id, from_status, to_status) VALUES ('s1','connected','error')"
            )
            t = time.perf_counter()
            while True:
                line = await asyncio.wait_for(r.content.readline(), 20)
                if not line:
                    raise RuntimeError("the stream ended")
                if line.startswith(b"data:"):
                    lat.append(time.perf_counter() - t)
                    break
            await asyncio.sleep(0.02)
        await conn.close()
    return lat


async def fanout(port: int, url: str, n: int) -> tuple[int, float, int, float]:
    """(received, last arrival after the commit, refused by the cap, /healthz seconds
    while every stream is open)."""
    got: list[float] = []
    ready = refused = 0
    start = asyncio.Event()

    async def sub(s: aiohttp.ClientSession) -> None:
        nonlocal ready, refused
        async with s.get(
            f"http://127.0.0.1:{port}/api/v1/stream", timeout=aiohttp.ClientTimeout(total=60)
        ) as r:
            if r.status != 200:
                refused += 1
                return
            await r.content.readline()
            ready += 1
            await start.wait()
            while True:
                line = await r.content.readline()
                if not line:
                    return  # the stream ended: this subscriber missed the event
                if line.startswith(b"data:"):
                    got.append(time.perf_counter())
                    return

    conn_opts = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn_opts) as s:
        tasks = [asyncio.ensure_future(sub(s)) for _ in range(n)]
        deadline = time.monotonic() + 60
        while ready + refused < n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        h0 = time.perf_counter()
        async with (
            aiohttp.ClientSession() as other,
            other.get(
                f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=30)
            ) as h,
        ):
            await h.read()
        healthz = time.perf_counter() - h0
        start.set()
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        t = time.perf_counter()
        await conn.execute(
            "INSERT INTO status_history (source_id, from_status, to_status) VALUES ('s1','error','connected')"
        )
        await conn.close()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    return len(got), (max(got) - t) if got else float("nan"), refused, healthz


def main() -> None:
    with migrated_database() as url:
        specs = [
            SourceSpec(
                id=f"s{i}",
                plugin="http",
                name=f"s{i}",
                config={"url": f"http://127.0.0.1/{i}", "headers": {"Authorization": "x"}},
            )
            for i in range(1000)
        ]
        catalog.import_sources(url, specs, prune=False)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("VACUUM ANALYZE data_sources")
        rows = []
        # P5/P6: both apps under the same settings (2 workers, the shipped threads);
        # the bare app's routes read the same columns as the Source shape
        bare, bport = start("api_app:app", url, CEILINGS)
        ours, oport = start("statusapi:create_app()", url, ROOT)
        shipped: Any = None
        try:
            for label, b_path, o_path in [
                ("P5 one source by id", "/one_full/s500", "/api/v1/sources/s500"),
                ("P6 100 sources", "/page_full", "/api/v1/sources?limit=100"),
            ]:
                b = wrk(f"http://127.0.0.1:{bport}{b_path}", 10, 32)
                o = wrk(f"http://127.0.0.1:{oport}{o_path}", 10, 32)
                rows.append((label, o, b))
            print("P5/P6 done", rows, file=sys.stderr)
            lat = asyncio.run(sse_latency(oport, url, 200))
            print("P7 done", file=sys.stderr)
            # P8 with deploy/gunicorn.conf.py as shipped: its workers and threads
            for p in (bare, ours):
                p.terminate()  # type: ignore[attr-defined]
                p.wait()  # type: ignore[attr-defined]
            shipped, sport = start("statusapi:create_app()", url, ROOT, workers=None)
            received, spread, refused, healthz = asyncio.run(fanout(sport, url, 1000))
        finally:
            for p in (bare, ours, shipped):
                if p is not None and p.poll() is None:  # type: ignore[attr-defined]
                    p.terminate()  # type: ignore[attr-defined]
                    p.wait()  # type: ignore[attr-defined]
    print(
        "\n| id | measure | statusapi | bare Flask+psycopg | ratio / target |\n|---|---|---|---|---|"
    )
    for label, o, b in rows:
        print(
            f"| {label.split()[0]} | {label[3:]} (req/s, wrk -c32, 10 s) | {o:,.0f} | {b:,.0f} | {o / b:.2f} (>= 0.8) |"
        )
    p99 = statistics.quantiles(lat, n=100)[98]
    print(
        f"| P7 | history row committed -> SSE subscriber (200 events) | p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms | | p99 < 250 ms |"
    )
    print(
        f"| P8 | 1,000 SSE subscribers on one host (shipped gunicorn.conf.py), one event to all"
        f" | {received:,} received, last after {spread * 1000:.0f} ms; {refused} refused;"
        f" /healthz {healthz * 1000:.0f} ms with all open | | 1,000 within 1 s |"
    )


if __name__ == "__main__":
    main()
