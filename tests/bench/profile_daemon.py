"""Where one `healthd run` spends its CPU while saturated: py-spy samples, grouped.

Run: python tests/bench/profile_daemon.py [--seconds 20] [--sources 10000]
Needs Debian's nginx and `pip install py-spy`. 10,000 HTTP sources at 1 s (more than one
core probes), one daemon as a subprocess, py-spy samples it for ``--seconds`` (with its
native frames, so uvloop's and the C parts show), then this prints the share of samples
by where the innermost Python-level frame is (healthd's libcurl engine, the rest of
healthd, asyncio/uvloop, psycopg, the rest) and the top functions by self time. Probes/s come from nginx's access log.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import migrated_database  # noqa: E402
from _servers import nginx  # noqa: E402
from bench_daemon import seed  # noqa: E402

GROUPS = (
    ("healthd's libcurl engine (libcurl runs inside socket_action)", ("healthd/http/",)),
    ("healthd (ours)", ("healthd/",)),
    ("aiohttp", ("aiohttp/", "yarl/", "multidict/")),
    ("aiohappyeyeballs (socket + connect)", ("aiohappyeyeballs/",)),
    ("event loop (uvloop/asyncio)", ("asyncio/", "uvloop", "selectors.py")),
    ("psycopg (writer thread)", ("psycopg",)),
    ("apscheduler", ("apscheduler/",)),
)


def group_of(frame: str) -> str:
    for name, needles in GROUPS:
        if any(n in frame for n in needles):
            return name
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--sources", type=int, default=10_000)
    args = ap.parse_args()
    spy = shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy is needed: pip install py-spy")
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    access, raw = work / "access.log", work / "stacks.txt"
    with migrated_database() as url, nginx(access_log=access) as port:
        seed(url, args.sources, f"http://127.0.0.1:{port}/")
        env = {**os.environ, "HEALTHD_DATABASE_URL": url, "HEALTHD_INTERVAL": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "healthd", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(15)
            n0 = sum(1 for _ in access.open("rb"))
            t0 = time.perf_counter()
            subprocess.run(
                [spy, "record", "--pid", str(proc.pid), "--duration", str(args.seconds)]
                + ["--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
                check=True,
                capture_output=True,
            )
            rate = (sum(1 for _ in access.open("rb")) - n0) / (time.perf_counter() - t0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    by_group: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        leaf = frames[-1]
        if "idle" in leaf or "select" in leaf.split(" ")[0] or "epoll" in leaf:
            continue  # waiting, not working
        total += n
        by_group[group_of(leaf)] += n
        by_func[leaf] += n
    print(f"\n{rate:,.0f} probes/s, {total:,} busy samples over {args.seconds} s\n")
    print("| where the CPU goes (innermost frame) | share |\n|---|---|")
    for name, n in by_group.most_common():
        print(f"| {name} | {n / total:.1%} |")
    print("\n| top functions by self time | share |\n|---|---|")
    for name, n in by_func.most_common(20):
        print(f"| `{name[:110]}` | {n / total:.1%} |")
    print(f"\n(raw stacks: {raw})")


if __name__ == "__main__":
    main()
