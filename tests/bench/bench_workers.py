"""P11 and P2 with `healthd run --workers 2`, against blackbox_exporter in the same run.

Run: python tests/bench/bench_workers.py [--counts 100000,125000,150000] [--workers 2]
Needs Debian's nginx, wrk and prometheus-blackbox-exporter. Everything on 127.0.0.1.

- P11: 10,000 sources at 1 s (more than two cores can probe), `healthd run --workers 2`;
  probes/s counted in nginx's access log, against blackbox_exporter's /probe driven by wrk
  at the same nginx.
- P2: for each count, sources at 30 s; after a warm-up of one interval and a bit, the
  schedule lag over one interval from the daemons' own histograms (daemon_nodes.metrics,
  summed over the workers): the share of probes started more than 1 s late and the p99
  bucket; plus how far the table's most overdue 1 % is at the end. The largest count whose
  p99 stays under 1 s is what the machine carries.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import psycopg  # noqa: E402
from _cluster import migrated_database  # noqa: E402
from _servers import blackbox, nginx, wrk  # noqa: E402
from bench_daemon import seed  # noqa: E402


def bare_aiohttp(port: int, n: int = 10_000) -> tuple[float, float]:
    """The floor for one core: (GETs/s, CPU µs per GET) of aiohttp configured as the http
    plugin, a fresh connection each, nothing else (no scheduling, debounce or writes), on
    uvloop as `healthd run` uses it (bench_client_floor.py's measurement)."""
    import uvloop
    from bench_client_floor import variant

    return uvloop.run(variant(port, "aiohttp as healthd", n))


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def family(pattern: str) -> list[int]:
    """The processes whose command line matches (this run's postmaster or nginx master,
    by their temp directory's prefix) and their children."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    heads = [int(p) for p in out.split() if int(p) != os.getpid()]
    return heads + [c for h in heads for c in children(h)]


class CpuShare:
    """CPU per probe of the daemon's processes, PostgreSQL's and nginx's over a window:
    where the two cores go, measured in the same run."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.groups = {
            "daemon": [proc.pid, *children(proc.pid)],
            "postgres": family("healthd-bench-pg-"),
            "nginx": family("bench-nginx-"),
        }
        self.start = {k: cpu_seconds(v) for k, v in self.groups.items()}

    def per_probe_us(self, probes: int) -> dict[str, float]:
        return {
            k: (cpu_seconds(v) - self.start[k]) / max(1, probes) * 1e6
            for k, v in self.groups.items()
        }


def seed_cold(url: str, n: int, target: str) -> None:
    """n sources, none probed yet (each count starts as a first start would)."""
    seed(url, n, target)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("UPDATE data_sources SET last_tested_at = NULL")


def lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def start(url: str, workers: int, interval: float, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HEALTHD_DATABASE_URL": url,
        "HEALTHD_INTERVAL": str(interval),
        "HEALTHD_TIMEOUT": "5",
        "HEALTHD_WORKERS": str(workers),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "healthd", "run"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def lag_histogram(url: str) -> tuple[list[float], list[int]]:
    """The schedule-lag histograms of every live daemon, summed (per-bucket counts)."""
    bounds: list[float] = []
    counts: list[int] = []
    with psycopg.connect(url) as c:
        for (m,) in c.execute(
            "SELECT metrics FROM daemon_nodes WHERE metrics IS NOT NULL"
            " AND heartbeat_at > now() - interval '30 seconds'"
        ):
            h = m["schedule_lag"]
            bounds = h["le"]
            counts = [
                a + b for a, b in zip(counts or [0] * len(h["counts"]), h["counts"], strict=False)
            ]
    return bounds, counts


def lag_summary(before: tuple[list[float], list[int]], after: tuple[list[float], list[int]]):
    bounds, a = after
    b = before[1] or [0] * len(a)
    diff = [max(0, x - y) for x, y in zip(a, b, strict=False)]
    total = sum(diff)
    if not total:
        return {"probes": 0, "late_1s": float("nan"), "p99_le": float("nan")}
    late = sum(c for bound, c in zip([*bounds, float("inf")], diff, strict=False) if bound > 1.0)
    running, p99 = 0, float("inf")
    for bound, c in zip([*bounds, float("inf")], diff, strict=False):
        running += c
        if running >= 0.99 * total:
            p99 = bound
            break
    return {"probes": total, "late_1s": late / total, "p99_le": p99}


def overdue_p99(url: str, interval: float) -> tuple[float, int]:
    """(p99 of how far each probed source's last probe is overdue, sources never probed)."""
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
            " now() - last_tested_at)), count(*) FILTER (WHERE last_tested_at IS NULL)"
            " FROM data_sources"
        ).fetchone()
    if not row or row[0] is None:
        return float("nan"), int(row[1]) if row else 0
    return float(row[0]) - interval, int(row[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,125000,150000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-p11", action="store_true")
    ap.add_argument("--warm", type=float, default=45.0, help="seconds before measuring")
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per count")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    access = work / "access.log"
    log = work / "healthd.log"
    out: dict[str, Any] = {"curve": []}
    with migrated_database() as url, nginx(access_log=access) as nginx_port:
        target = f"http://127.0.0.1:{nginx_port}/"
        with blackbox() as bb:
            out["blackbox"] = wrk(
                f"http://127.0.0.1:{bb}/probe?target={target}&module=http_2xx", 10
            )
        print(f"blackbox_exporter {out['blackbox']:,.0f} probes/s", file=sys.stderr)
        out["bare"], out["bare_us"] = bare_aiohttp(nginx_port)
        print(f"bare aiohttp, one process: {out['bare']:,.0f}/s", file=sys.stderr)
        if not args.skip_p11:
            for key, workers in (("p11", args.workers), ("p11_one", 1)):
                seed_cold(url, 10_000, target)
                proc = start(url, workers, 1.0, log)
                try:
                    time.sleep(20)
                    share = CpuShare(proc)
                    n0, t0 = lines(access), time.perf_counter()
                    time.sleep(15)
                    probes = lines(access) - n0
                    out[key] = probes / (time.perf_counter() - t0)
                    out[key + "_cpu"] = share.per_probe_us(probes)
                finally:
                    stop(proc)
                print(f"{key} {out[key]:,.0f} probes/s", file=sys.stderr)
        for n in counts:
            seed_cold(url, n, target)
            proc = start(url, args.workers, 30.0, log)
            try:
                time.sleep(args.warm)  # start-up spreads the first probes over one interval
                share = CpuShare(proc)
                h0, n0, t0 = lag_histogram(url), lines(access), time.perf_counter()
                time.sleep(args.window)
                probes = lines(access) - n0
                rate = probes / (time.perf_counter() - t0)
                lag = lag_summary(h0, lag_histogram(url))
                row = {"sources": n, "rate": rate, "demand": n / 30, **lag}
                row["cpu_us"] = share.per_probe_us(probes)
                row["overdue_p99"], row["never"] = overdue_p99(url, 30.0)
            finally:
                stop(proc)
            out["curve"].append(row)
            print(json.dumps(row), file=sys.stderr)
    bbr = out["blackbox"]
    print(f"\n`python tests/bench/bench_workers.py --counts {args.counts}`\n")
    print("| id | measure | healthd | blackbox_exporter (same run) | ratio / target |")
    print("|---|---|---|---|---|")
    if "p11" in out:
        print(
            f"| P11 | probes/s, `healthd run --workers {args.workers}`, 10,000 sources @ 1 s"
            f" | {out['p11']:,.0f} | {bbr:,.0f} | **{out['p11'] / bbr:.2f}** (>= 1.5) |"
        )
    if "p11_one" in out:
        print(
            "| | same, one process (`--workers 1`, no supervisor)"
            f" | {out['p11_one']:,.0f} | {bbr:,.0f} | {out['p11_one'] / bbr:.2f} |"
        )
    per = out.get("p11", 0.0) / args.workers / out["bare"]
    print(
        "| | bare aiohttp GET, fresh connection each, one process (uvloop): one core's floor"
        f" | {out['bare']:,.0f} | | healthd per worker / floor: {per:.2f} |"
    )
    bare_us = out["bare_us"]
    print(
        "\nCPU per probe, µs (user + system; the daemon's processes, PostgreSQL's, nginx's):"
        f" bare aiohttp client alone {bare_us:,.0f}"
    )
    for key in ("p11", "p11_one"):
        if key + "_cpu" in out:
            c = out[key + "_cpu"]
            print(
                f"- {key}: daemon {c['daemon']:,.0f}, postgres {c['postgres']:,.0f},"
                f" nginx {c['nginx']:,.0f}"
            )
    need = 5000 * bare_us / 1e6
    print(
        f"- 150,000 sources @ 30 s = 5,000 probes/s: the bare aiohttp client alone needs"
        f" {need:.2f} of the 2 cores at that rate, before nginx, PostgreSQL and any scheduling"
    )
    print(
        "\n| sources @ 30 s | demand/s | probes/s (nginx) | started > 1 s late | lag p99 "
        "| table: p99 overdue (never probed) | CPU µs/probe: daemon / postgres / nginx "
        "| blackbox_exporter/s |\n|---|---|---|---|---|---|---|---|"
    )
    for r in out["curve"]:
        c = r["cpu_us"]
        print(
            f"| {r['sources']:,} | {r['demand']:,.0f} | {r['rate']:,.0f} | {r['late_1s']:.2%}"
            f" | <= {r['p99_le']:g} s | {r['overdue_p99']:.1f} s ({r['never']:,})"
            f" | {c['daemon']:,.0f} / {c['postgres']:,.0f} / {c['nginx']:,.0f} | {bbr:,.0f} |"
        )
    held = [r["sources"] for r in out["curve"] if r["p99_le"] <= 1.0]
    print(f"\nlargest count with lag p99 <= 1 s: {max(held):,}" if held else "\nnone held")
    print(
        f"(blackbox_exporter's rate in this run, {bbr:,.0f}/s, is {bbr * 30:,.0f} sources at"
        " 30 s if something else scheduled its probes and stored nothing"
        + (f": healthd's / that = {max(held) / (bbr * 30):.2f})" if held else ")")
    )
    print(f"(logs: {log})")


if __name__ == "__main__":
    main()
