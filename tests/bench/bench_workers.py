"""P11, P15 and the P2 curve with `healthd run --workers 2`, against blackbox_exporter and
the bare libcurl-on-asyncio floor in the same run.

Run: python tests/bench/bench_workers.py [--counts 100000,150000,200000] [--workers 2]
Needs Debian's nginx, wrk and prometheus-blackbox-exporter. Everything on 127.0.0.1.

- Floor (P15's reference): the bare libcurl multi interface on a uvloop loop, a fresh
  connection per GET and nothing else (bench_client_floor.py), CPU per GET.
- P11: 10,000 sources at 1 s (more than two cores can probe), `healthd run --workers 2`;
  probes/s counted by nginx, against blackbox_exporter's /probe driven by wrk at the same
  nginx. Then one process (`--workers 1`): its CPU per probe over the floor's is P15.
- P2: for each count, sources at 30 s, each with its own URL (``/?s<i>``), found as a
  restarted daemon finds them (connected, each last probed somewhere in the last
  interval; ``--cold``: a first start, every source unknown and never probed, so every
  first result is a transition). After a warm-up, over a window of two intervals, nginx's access log gives each source's probe times ($msec), so
  lateness is what the target saw: each gap between two probes of a source minus the
  interval (a source with fewer than two probes in the window counts the gap it must at
  least have had). The largest count whose lateness p99 stays under 1 s while probing at
  least 97 % of the needed rate is what the machine carries. CPU per probe of the
  daemon's processes, PostgreSQL's and nginx's over the window; the workers' RSS.
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
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import psycopg  # noqa: E402
from _cluster import migrated_database  # noqa: E402
from _servers import blackbox, nginx, wrk  # noqa: E402

from healthd.config.sources import SourceSpec  # noqa: E402
from healthd.store import catalog  # noqa: E402

INTERVAL = 30.0


def floor(port: int, n: int = 10_000) -> tuple[float, float]:
    """(GETs/s, CPU µs per GET) of the bare libcurl glue on uvloop, nothing stored."""
    import uvloop
    from bench_client_floor import variant

    return uvloop.run(variant(port, "bare libcurl on the asyncio loop", n))


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


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


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


def seed(url: str, n: int, target: str, warm: bool = True) -> None:
    """n sources, each with its own URL (so nginx's log tells them apart). ``warm``: as
    a restarted daemon finds them (connected, last probed at random within the last
    interval, so each keeps its place); otherwise cold, never probed and unknown, so the
    first result of each is a transition (a first start: a backlog of one interval and
    n history rows)."""
    specs = [
        SourceSpec(id=f"s{i}", plugin="http", config={"url": f"{target}?s{i}"}, name=f"s{i}")
        for i in range(n)
    ]
    catalog.import_sources(url, specs, prune=True)
    with psycopg.connect(url, autocommit=True) as c:
        if warm:
            c.execute(
                "UPDATE data_sources SET connection_status='connected', pending_status=NULL,"
                " pending_count=0, recent_results=repeat('c', 21), flapping=false,"
                " config_changed_at = now() - interval '1 hour',"
                f" last_tested_at = now() - random() * interval '{INTERVAL} seconds'"
            )
        else:
            c.execute(
                "UPDATE data_sources SET connection_status='unknown', pending_status=NULL,"
                " pending_count=0, recent_results='', flapping=false, last_tested_at=NULL"
            )
        c.execute("VACUUM ANALYZE data_sources")


def probe_times(access: Path, t0: float, t1: float) -> dict[str, list[float]]:
    """Each source's probe times (nginx's $msec) within [t0, t1]."""
    out: dict[str, list[float]] = defaultdict(list)
    with access.open() as f:
        for line in f:
            at_s, _, uri = line.partition(" ")
            try:
                at = float(at_s)
            except ValueError:
                continue
            if t0 <= at <= t1:
                out[uri.rstrip("\n").rpartition("?")[2]].append(at)
    return out


def served(access: Path, t0: float, t1: float) -> int:
    return sum(len(v) for v in probe_times(access, t0, t1).values())


def lateness(
    times: dict[str, list[float]], n: int, t0: float, t1: float, interval: float
) -> dict[str, float]:
    """Each gap between two probes of a source, minus the interval, as nginx saw them. A
    source probed once in the window waited at least the longer side; one not probed at
    all at least the whole window (lower bounds: what they must at least have been)."""
    late: list[float] = []
    for i in range(n):
        ts = sorted(times.get(f"s{i}", ()))
        if not ts:
            late.append(t1 - t0 - interval)
        elif len(ts) == 1:
            late.append(max(ts[0] - t0, t1 - ts[0]) - interval)
        else:
            late.extend(b - a - interval for a, b in zip(ts, ts[1:], strict=False))
    late.sort()
    if not late:
        return {"gaps": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "gaps": len(late),
        "p50": late[len(late) // 2],
        "p99": late[min(len(late) - 1, int(0.99 * len(late)))],
        "max": late[-1],
        "late_1s": sum(1 for x in late if x > 1.0) / len(late),
        "unprobed": sum(1 for i in range(n) if f"s{i}" not in times),
    }


def start(url: str, workers: int, interval: float, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HEALTHD_DATABASE_URL": url,
        "HEALTHD_INTERVAL": str(interval),
        "HEALTHD_TIMEOUT": "5",
        "HEALTHD_WORKERS": str(workers),
        # what a worker stopped mid-outage spools stays with this run
        "HEALTHD_SPOOL_DIR": str(log.parent),
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


def saturated(
    url: str, target: str, access: Path, log: Path, workers: int, seconds: float
) -> dict[str, Any]:
    """10,000 sources at 1 s: probes/s (nginx) and CPU per probe."""
    seed(url, 10_000, target, warm=False)
    proc = start(url, workers, 1.0, log)
    try:
        time.sleep(20)
        share = CpuShare(proc)
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
        usage = {k: cpu_seconds(v) - share.start[k] for k, v in share.groups.items()}
    finally:
        stop(proc)
    time.sleep(1.5)  # nginx's log buffer is flushed within 1 s
    probes = served(access, t0, t1)
    return {
        "rate": probes / (t1 - t0),
        "cpu_us": {k: v / max(1, probes) * 1e6 for k, v in usage.items()},
    }


def curve_point(
    url: str,
    target: str,
    access: Path,
    log: Path,
    n: int,
    workers: int,
    warm: float,
    window: float,
    cold: bool,
) -> dict[str, Any]:
    seed(url, n, target, warm=not cold)
    proc = start(url, workers, INTERVAL, log)
    try:
        time.sleep(warm)  # start-up spreads the first probes over one interval
        share = CpuShare(proc)
        t0 = time.time()
        time.sleep(window)
        t1 = time.time()
        usage = {k: cpu_seconds(v) - share.start[k] for k, v in share.groups.items()}
        rss = [rss_mb(p) for p in share.groups["daemon"]]
    finally:
        stop(proc)
    time.sleep(1.5)
    times = probe_times(access, t0, t1)
    probes = sum(len(v) for v in times.values())
    rate = probes / (t1 - t0)
    return {
        "sources": n,
        "demand": n / INTERVAL,
        "rate": rate,
        "share": rate / (n / INTERVAL),
        **lateness(times, n, t0, t1, INTERVAL),
        "cpu_us": {k: v / max(1, probes) * 1e6 for k, v in usage.items()},
        "rss_mb": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,150000,200000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-p11", action="store_true")
    ap.add_argument("--warm", type=float, default=45.0, help="seconds before measuring")
    ap.add_argument(
        "--window", type=float, default=60.0, help="seconds measured per count (2 intervals)"
    )
    ap.add_argument("--p11-seconds", type=float, default=15.0)
    ap.add_argument(
        "--cold", action="store_true", help="P2 from a first start (every source unknown)"
    )
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    access = work / "access.log"
    log = work / "healthd.log"
    out: dict[str, Any] = {"curve": []}
    load0 = os.getloadavg()
    with migrated_database() as url, nginx(access_log=access, buffered=True) as nginx_port:
        target = f"http://127.0.0.1:{nginx_port}/"
        with blackbox() as bb:
            out["blackbox"] = wrk(
                f"http://127.0.0.1:{bb}/probe?target={target}&module=http_2xx", 10
            )
        print(f"blackbox_exporter {out['blackbox']:,.0f} probes/s", file=sys.stderr)
        out["floor"], out["floor_us"] = floor(nginx_port)
        print(
            f"bare libcurl floor: {out['floor']:,.0f}/s, {out['floor_us']:.0f} µs", file=sys.stderr
        )
        if not args.skip_p11:
            for key, workers in (("p11", args.workers), ("p11_one", 1)):
                out[key] = saturated(url, target, access, log, workers, args.p11_seconds)
                print(key, json.dumps(out[key]), file=sys.stderr)
            # the floor again after the daemons: the machine's speed drifts within a run
            out["floor2"], out["floor2_us"] = floor(nginx_port)
        for n in counts:
            row = curve_point(
                url, target, access, log, n, args.workers, args.warm, args.window, args.cold
            )
            out["curve"].append(row)
            print(json.dumps(row), file=sys.stderr)
    report(args, out, load0, os.getloadavg())
    print(f"(logs: {work})")


def report(args: Any, out: dict[str, Any], load0: Any, load1: Any) -> None:
    bbr = out["blackbox"]
    print(f"\n`python tests/bench/bench_workers.py --counts {args.counts}`")
    print(f"(load average before {load0[0]:.2f}, after {load1[0]:.2f})\n")
    print("| id | measure | healthd | reference (same run) | ratio / target |")
    print("|---|---|---|---|---|")
    floor_us = out["floor_us"]
    if "p11" in out:
        p11, one = out["p11"], out["p11_one"]
        print(
            f"| P11 | probes/s, `healthd run --workers {args.workers}`, 10,000 sources @ 1 s"
            f" | {p11['rate']:,.0f} | blackbox_exporter {bbr:,.0f} |"
            f" **{p11['rate'] / bbr:.2f}** (>= 3.0) |"
        )
        print(
            f"| | same, one process (`--workers 1`) | {one['rate']:,.0f} | {bbr:,.0f} |"
            f" {one['rate'] / bbr:.2f} |"
        )
        floors = f"{floor_us:.0f} / {out['floor2_us']:.0f}"
        mean_floor = (floor_us + out["floor2_us"]) / 2
        for key, label in (("p11_one", "one process"), ("p11", f"--workers {args.workers}")):
            d = out[key]["cpu_us"]["daemon"]
            print(
                f"| P15 | daemon CPU µs per probe, saturated, {label} | {d:,.0f} |"
                f" bare libcurl on asyncio {floors} (before / after) |"
                f" **{d / mean_floor:.2f}** (<= 2.0) |"
            )
        print("\nCPU per probe, µs (user + system; the daemon's processes, PostgreSQL's, nginx's):")
        for key in ("p11", "p11_one"):
            c = out[key]["cpu_us"]
            print(
                f"- {key}: daemon {c['daemon']:,.0f}, postgres {c['postgres']:,.0f},"
                f" nginx {c['nginx']:,.0f}"
            )
    print(
        "\n| sources @ 30 s | demand/s | probes/s (nginx) | of demand | lateness p50 / p99 / max"
        " | gaps > 1 s late | unprobed in window | CPU µs/probe: daemon / postgres / nginx"
        " | workers' RSS MB |\n|---|---|---|---|---|---|---|---|---|"
    )
    for r in out["curve"]:
        c = r["cpu_us"]
        rss = " + ".join(f"{x:.0f}" for x in r["rss_mb"] if x > 40) or "-"
        print(
            f"| {r['sources']:,} | {r['demand']:,.0f} | {r['rate']:,.0f} | {r['share']:.1%}"
            f" | {r['p50']:.2f} / {r['p99']:.2f} / {r['max']:.2f} s | {r.get('late_1s', 0):.2%}"
            f" | {r.get('unprobed', 0):,}"
            f" | {c['daemon']:,.0f} / {c['postgres']:,.0f} / {c['nginx']:,.0f} | {rss} |"
        )
    held = [r["sources"] for r in out["curve"] if r["p99"] < 1.0 and r["share"] >= 0.97]
    print(
        f"\nlargest count held (lateness p99 < 1 s at >= 97 % of the rate): {max(held):,}"
        if held
        else "\nnone held"
    )
    print(
        f"(blackbox_exporter's rate in this run, {bbr:,.0f}/s, is {bbr * INTERVAL:,.0f} sources"
        " at 30 s if something else scheduled its probes and stored nothing"
        + (f": healthd's / that = {max(held) / (bbr * INTERVAL):.2f})" if held else ")")
    )


if __name__ == "__main__":
    main()
