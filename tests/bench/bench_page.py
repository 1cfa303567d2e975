"""P12 and P13: the /status page against the JSON list, and the uptime of one busy source.

Run: python tests/bench/bench_page.py [--seconds 10] [--sources 1000] [--no-p13]
Needs Debian's wrk. statusapi runs under gunicorn with deploy/gunicorn.conf.py (2 gthread
workers) against a throwaway PostgreSQL holding 1,000 sources (--sources) and 100
transitions each over 90 days, plus one source with 10,000 transitions for P13, rolled
up by day as the daemon does. The workers' resident memory is sampled every 0.2 s while they serve.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import psycopg  # noqa: E402
from _cluster import migrated_database  # noqa: E402

from healthd.local.embedded import free_port  # noqa: E402
from healthd.store import uptimedays  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SOURCES, PER_SOURCE, HEAVY = 1000, 100, 10_000


def seed(url: str, sources: int) -> None:
    kinds = ("service", "database", "ai", "queue", "storage")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "INSERT INTO data_sources (id, name, type, plugin, config, connection_status,"
            " created_at, latency_ms, last_tested_at, status_changed_at, test_status)"
            " SELECT 's' || g, 'Source ' || g, (%s::text[])[1 + g %% 5], 'http',"
            " jsonb_build_object('url', 'http://127.0.0.1/' || g, 'headers',"
            "  jsonb_build_object('Authorization', 'x')),"
            " CASE WHEN g %% 50 = 0 THEN 'error' ELSE 'connected' END,"
            " now() - interval '100 days', 12.5, now(), now() - interval '1 hour', 'success'"
            " FROM generate_series(1, %s) g",
            (list(kinds), sources),
        )
        # PER_SOURCE transitions per source over 90 days: down for ~10 minutes, then up again
        c.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at)"
            " SELECT 's' || s, CASE WHEN k %% 2 = 0 THEN 'connected' ELSE 'error' END,"
            "  CASE WHEN k %% 2 = 0 THEN 'error' ELSE 'connected' END,"
            "  now() - make_interval(secs => 90 * 86400.0 * (1 - (k - k %% 2) / %s::float8)"
            "   - (k %% 2) * 600 - s)"
            " FROM generate_series(1, %s) s, generate_series(0, %s - 1) k"
            " ORDER BY 4",
            (PER_SOURCE, sources, PER_SOURCE),
        )
        c.execute(
            "INSERT INTO data_sources (id, name, type, plugin, created_at, connection_status)"
            " VALUES ('heavy', 'Heavy', 'zz-bench', 'http', now() - interval '100 days',"
            " 'connected')"
        )
        c.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at)"
            " SELECT 'heavy', CASE WHEN k %% 2 = 0 THEN 'connected' ELSE 'error' END,"
            "  CASE WHEN k %% 2 = 0 THEN 'error' ELSE 'connected' END,"
            "  now() - make_interval(secs => 90 * 86400.0 * (1 - k / %s::float8))"
            " FROM generate_series(0, %s - 1) k",
            (HEAVY, HEAVY),
        )
        c.execute("VACUUM ANALYZE")
        # the daily uptime rollup, as a running daemon keeps it (healthd/store/uptimedays.py)
        roller = uptimedays.Roller()
        while roller.batch(c):
            pass
        n = c.execute("SELECT count(*) FROM status_history").fetchone()
        print(f"seeded {sources + 1} sources, {n[0] if n else 0:,} history rows", file=sys.stderr)


def churn(url: str, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        while not stop.wait(0.5):
            c.execute(
                "UPDATE data_sources SET latency_ms = 5 + random() * 50, last_tested_at = now()"
            )


def start(url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "STATUSAPI_DATABASE_URL": url,
        "STATUSAPI_WORKERS": "2",
        "STATUSAPI_THREADS": "32",
        "STATUSAPI_ACCESS_LOG": "",
    }
    conf = str(ROOT / "deploy" / "gunicorn.conf.py")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            conf,
            "-b",
            f"127.0.0.1:{port}",
            "statusapi:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def wrk(url: str, seconds: int, connections: int, headers: tuple[str, ...] = ()) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()  # type: ignore[no-any-return]


def workers(master: int) -> list[int]:
    """The gunicorn master's children (its workers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            out.append(int(stat.parent.name))
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Memory:
    """The largest resident size any worker reached, sampled every 0.2 s."""

    def __init__(self, master: int) -> None:
        self.master, self.peak, self.stop = master, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.2):
            for pid in workers(self.master):
                self.peak = max(self.peak, rss_mb(pid))

    def now(self) -> float:
        return max((rss_mb(pid) for pid in workers(self.master)), default=0.0)


def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--sources", type=int, default=SOURCES)
    ap.add_argument("--no-p13", action="store_true", help="only P12 and the memory")
    args = ap.parse_args()
    n_src = args.sources
    with migrated_database() as url:
        seed(url, n_src)
        proc, port = start(url)
        base = f"http://127.0.0.1:{port}"
        memory = Memory(proc.pid)
        try:
            for _ in range(4):  # each worker loads its timelines once
                get(f"{base}/status")
            one_ms = timed(lambda: get(f"{base}/status", {"Accept-Encoding": "gzip"}), 10)
            group_ms = timed(lambda: get(f"{base}/status?group=ai"), 10)
            raw = len(get(f"{base}/status"))
            zipped = len(get(f"{base}/status", {"Accept-Encoding": "gzip"}))
            api = wrk(f"{base}/api/v1/sources?limit=1000", args.seconds, 8)
            page = wrk(f"{base}/status", args.seconds, 8)
            page_gz = wrk(f"{base}/status", args.seconds, 8, ("Accept-Encoding: gzip",))
            # as with a daemon probing: every source's latency changes twice a second
            stop = threading.Event()
            writer = threading.Thread(target=churn, args=(url, stop), daemon=True)
            writer.start()
            api_live = wrk(f"{base}/api/v1/sources?limit=1000", args.seconds, 8)
            page_live = wrk(f"{base}/status", args.seconds, 8, ("Accept-Encoding: gzip",))
            stop.set()
            writer.join()
            rss_end = memory.now()
            http_ms = (
                [] if args.no_p13 else timed(lambda: get(f"{base}/api/v1/sources/heavy/uptime"), 50)
            )
        finally:
            memory.stop.set()
            proc.terminate()
            proc.wait()
        if args.no_p13:
            _report(args.seconds, n_src, raw, zipped, api, page, page_gz, api_live, page_live)
            _report_memory(n_src, one_ms, group_ms, memory.peak, rss_end)
            return
        # the query and the arithmetic alone, in this process
        os.environ["STATUSAPI_DATABASE_URL"] = url
        from statusapi import create_app
        from statusapi.data import figures

        app = create_app({"DATABASE_URL": url})
        with app.app_context():
            figures.uptime("heavy")
            local_ms = timed(lambda: figures.uptime("heavy"), 50)
            rows_ms = timed(lambda: figures.queries.uptime_rows("heavy", 90), 50)

    _report(args.seconds, n_src, raw, zipped, api, page, page_gz, api_live, page_live)
    _report_memory(n_src, one_ms, group_ms, memory.peak, rss_end)
    print(
        f"| P13 | uptime of one source, 90 days, 10,000 transitions: GET .../uptime over HTTP"
        f" | {q(http_ms)} | | < 20 ms |"
    )
    print(f"| P13 | same, in process: query + arithmetic | {q(local_ms)} | | < 20 ms |")
    print(f"| P13 | same, the query alone | {q(rows_ms)} | | |")


def q(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.1f} ms, p95 {statistics.quantiles(xs, n=20)[18]:.1f} ms"


def _report(
    seconds: int,
    n_src: int,
    raw: int,
    zipped: int,
    api: float,
    page: float,
    page_gz: float,
    api_live: float,
    page_live: float,
) -> None:
    print(
        "\n| id | measure | result | reference (same run) | ratio / target |\n|---|---|---|---|---|"
    )
    print(
        f"| P12 | `/status`, {n_src:,} sources + {n_src * PER_SOURCE:,} history rows"
        f" (wrk -c8, {seconds} s), no gzip ({raw / 1e6:.2f} MB) | {page:,.1f} req/s |"
        f" `/api/v1/sources?limit=1000` {api:,.1f} req/s | **{page / api:.2f}** (>= 0.5) |"
    )
    print(
        f"| P12 | same, `Accept-Encoding: gzip` as a browser sends ({zipped / 1e3:.0f} kB) |"
        f" {page_gz:,.1f} req/s | {api:,.1f} req/s | **{page_gz / api:.2f}** (>= 0.5) |"
    )
    print(
        f"| P12 | same, gzip, while every source's latency changes twice a second (rows"
        f" re-rendered) | {page_live:,.1f} req/s | {api_live:,.1f} req/s |"
        f" **{page_live / api_live:.2f}** (>= 0.5) |"
    )


def _report_memory(
    n_src: int, one_ms: list[float], group_ms: list[float], peak: float, end: float
) -> None:
    print(f"| | one `/status` (gzip), {n_src:,} sources, nothing else running | {q(one_ms)} | | |")
    print(f"| | one `/status?group=ai` (a page of 100) | {q(group_ms)} | | |")
    print(
        f"| | a worker's resident memory: peak while serving all of the above | {peak:.0f} MB"
        f" | at the end {end:.0f} MB | |"
    )


if __name__ == "__main__":
    main()
