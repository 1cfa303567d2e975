"""P1-P4: the daemon's probe throughput, schedule lag, memory and write path.

Run: python tests/bench/bench_daemon.py [--quick]
Needs Debian's nginx, wrk and prometheus-blackbox-exporter. Everything runs on 127.0.0.1.
P1 compares, in the same run, healthd probing nginx (fresh connection per probe, results
written to PostgreSQL) with blackbox_exporter's /probe driven by wrk at the same nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import psycopg  # noqa: E402
from _cluster import migrated_database  # noqa: E402
from _servers import blackbox, nginx, wrk  # noqa: E402

from healthd.config import settings  # noqa: E402
from healthd.config.sources import SourceSpec  # noqa: E402
from healthd.core.debounce import Observation, State  # noqa: E402
from healthd.daemon.loop import Daemon  # noqa: E402
from healthd.store import catalog  # noqa: E402
from healthd.store.codec import ResultRow  # noqa: E402
from healthd.store.facade import Store  # noqa: E402


def seed(url: str, n: int, target: str) -> None:
    specs = [
        SourceSpec(id=f"s{i}", plugin="http", config={"url": target}, name=f"s{i}")
        for i in range(n)
    ]
    catalog.import_sources(url, specs, prune=True)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "UPDATE data_sources SET connection_status='unknown', pending_status=NULL, pending_count=0,"
            " recent_results='', flapping=false"
        )
        c.execute("VACUUM ANALYZE data_sources")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_daemon(
    url: str, interval: float, warm: float, window: float, concurrency: int
) -> dict[str, Any]:
    s = settings.load({}, database_url=url, interval=interval, timeout=5.0, concurrency=concurrency)
    d = Daemon(s)
    await d.start()
    await asyncio.sleep(warm)
    c = d.runtime.counters
    c.lags = []
    p0, w0, cpu0, t0 = c.probes, d.store.written_rows, time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    dt = time.perf_counter() - t0
    out = {
        "probes_s": (c.probes - p0) / dt,
        "rows_s": (d.store.written_rows - w0) / dt,
        "cpu": (time.process_time() - cpu0) / dt * 100,
        "lag_p50": statistics.median(c.lags) if c.lags else float("nan"),
        "lag_p99": statistics.quantiles(c.lags, n=100)[98] if len(c.lags) > 1 else float("nan"),
        "rss_mb": rss_mb(),
        "sources": len(d.runtime.sources),
    }
    await d.stop()
    return out


async def write_path(url: str, n: int, batch: int, sources: int | None = None) -> float:
    """Rows/s through Store.flush (COPY + UPDATE in one transaction); building the
    results is the probe side's cost and is not timed. Row i is source s{i % sources}
    (default: every row its own source). The last flush, which writes the latency
    rollups still open (as a stop does), is timed with the rest."""
    store = Store(url, "bench")
    now = time.time()
    st = State(status="connected", recent="c" * 21)
    total, spent = 0, 0.0
    m = sources or n
    for k in range(0, n, batch):
        for i in range(k, min(n, k + batch)):
            store.add_result(
                ResultRow(f"s{i % m}", Observation("connected", "HTTP 200", now), 1.5, st, False)
            )
        t = time.perf_counter()
        await store.flush()
        spent += time.perf_counter() - t
        total += min(batch, n - k)
    t = time.perf_counter()
    if "everything" in inspect.signature(store.flush).parameters:  # not before the rollbuf
        await store.flush(everything=True)
    spent += time.perf_counter() - t
    await store.close()
    return total / spent


def p4_only(rounds: int) -> None:
    """P4 alone (no nginx, no blackbox): `rounds` runs of each workload, one database."""
    with migrated_database() as url:
        seed(url, 10_000, "http://127.0.0.1:9/")
        for r in range(rounds):
            a = asyncio.run(write_path(url, 100_000, 10_000))
            b = asyncio.run(write_path(url, 100_000, 10_000, sources=10_000))
            print(
                f"round {r + 1}: P4 {a:,.0f} rows/s (100,000 sources once);"
                f" {b:,.0f} rows/s (10,000 sources x 10 flushes)",
                flush=True,
            )


def arun(coro: Any) -> Any:
    """The event loop `healthd run` uses: uvloop when installed."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def run_processes(
    url: str, n: int, log: Path, warm: float, window: float, interval: float = 1.0
) -> tuple[float, float]:
    """(probes/s that nginx served to N `healthd run` subprocesses (its access log counts),
    p99 of how far each source's last probe is overdue at the end: now - last_tested_at -
    interval, the schedule lag as the table shows it)."""
    import signal
    import subprocess

    env = {
        **os.environ,
        "HEALTHD_DATABASE_URL": url,
        "HEALTHD_INTERVAL": str(interval),
        "HEALTHD_TIMEOUT": "5",
        "HEALTHD_LOG_FORMAT": "text",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "healthd", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]
    try:
        time.sleep(warm)
        before = log.stat().st_size and sum(1 for _ in log.open("rb"))
        t = time.perf_counter()
        time.sleep(window)
        after = sum(1 for _ in log.open("rb"))
        rate = (after - before) / (time.perf_counter() - t)
        with psycopg.connect(url) as c:
            row = c.execute(
                "SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
                " now() - coalesce(last_tested_at, '-infinity'))) FROM data_sources"
            ).fetchone()
        return rate, float(row[0]) - interval if row and row[0] is not None else float("nan")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="P1 and P4 only (10,000 sources)")
    ap.add_argument("--p2", action="store_true", help="P2/P3 only (100,000 sources @ 30 s)")
    ap.add_argument(
        "--daemons",
        type=int,
        default=0,
        help="also measure P1 with N real `healthd run` processes sharing the sources",
    )
    ap.add_argument("--p4", type=int, default=0, metavar="ROUNDS", help="P4 only, ROUNDS runs")
    args = ap.parse_args()
    if args.p4:
        p4_only(args.p4)
        return
    from healthd.daemon import logs

    logs.setup(
        "text", level=30
    )  # warnings and errors only: the summary line per interval is noise here
    import gc

    gc.set_threshold(50_000, 20, 100)  # as `healthd run` does
    results: dict[str, Any] = {}
    import tempfile

    access = Path(tempfile.mkdtemp(prefix="bench-access-")) / "access.log"
    with (
        migrated_database() as url,
        nginx(access_log=access if args.daemons else None) as nginx_port,
    ):
        target = f"http://127.0.0.1:{nginx_port}/"
        if not args.p2:
            with blackbox() as bb:
                results["blackbox_probes_s"] = wrk(
                    f"http://127.0.0.1:{bb}/probe?target={target}&module=http_2xx", 10
                )
            seed(url, 10_000, target)
            results["p1"] = arun(run_daemon(url, interval=1.0, warm=5, window=15, concurrency=500))
            results["p4_rows_s"] = asyncio.run(write_path(url, 100_000, 10_000))
            if args.daemons:
                seed(url, 10_000, target)
                results["p1_processes"] = run_processes(
                    url, args.daemons, access, warm=20, window=15
                )[0]
        if not args.quick:
            seed(url, 100_000, target)
            results["p2"] = arun(
                run_daemon(url, interval=30.0, warm=35, window=30, concurrency=500)
            )
            if args.daemons:
                seed(url, 100_000, target)
                results["p2_processes"] = run_processes(
                    url, args.daemons, access, warm=45, window=30, interval=30.0
                )
    print("\n| id | measure | healthd | reference | ratio / target |\n|---|---|---|---|---|")
    if "p1" in results:
        p1, bb = results["p1"], results["blackbox_probes_s"]
        print(
            f"| P1 | HTTP probes/s, fresh connection, persisted (10,000 sources @ 1 s) | {p1['probes_s']:,.0f} "
            f"(rows written {p1['rows_s']:,.0f}/s, cpu {p1['cpu']:.0f} %) | blackbox_exporter {bb:,.0f}/s | {p1['probes_s'] / bb:.2f} (>= 1.0) |"
        )
        print(
            f"| P4 | status rows/s through the write path (100,000 rows, 10,000 per flush) | {results['p4_rows_s']:,.0f} | | >= 50,000 |"
        )
        print(
            f"| P1 detail | 10,000 @ 1 s: lag p99 {p1['lag_p99']:.3f} s, RSS {p1['rss_mb']:.0f} MB | | | |"
        )
        if "p1_processes" in results:
            pp = results["p1_processes"]
            print(
                f"| P1 | same, {args.daemons} `healthd run` processes sharing the sources (nginx access log) | "
                f"{pp:,.0f} | blackbox_exporter {bb:,.0f}/s | {pp / bb:.2f} (>= 1.0) |"
            )
    if "p2" in results:
        p2 = results["p2"]
        print(
            f"| P2 | 100,000 sources @ 30 s: probes/s (demand 3,333) | {p2['probes_s']:,.0f}, lag p50 {p2['lag_p50']:.3f} s, "
            f"p99 {p2['lag_p99']:.3f} s, cpu {p2['cpu']:.0f} % | | p99 < 1 s |"
        )
        print(f"| P3 | daemon RSS at 100,000 sources | {p2['rss_mb']:.0f} MB | | < 500 MB |")
    if "p2_processes" in results:
        rate, lag = results["p2_processes"]
        print(
            f"| P2 | same, {args.daemons} `healthd run` processes: probes/s (nginx log); p99 of last probe overdue "
            f"(table) | {rate:,.0f}; {lag:.1f} s | | p99 < 1 s |"
        )
    print(json.dumps(results, default=float), file=sys.stderr)


if __name__ == "__main__":
    main()
