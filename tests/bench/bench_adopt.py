"""Adopting the original table: `healthd migrate` on N original rows (default 100,000), the
cost of the adopted table's fill trigger on the backend's INSERT and on `healthd sources
import` (the same N rows into an adopted and into a healthd-made table), and one look of
the daemon's schema gate.

Run: python tests/bench/bench_adopt.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from healthd.local import embedded
from healthd.store import migrate

SEED_DDL = (
    "CREATE TABLE data_sources (id varchar(50) PRIMARY KEY, name varchar(100), type"
    " varchar(50), plugin varchar(100), config JSON, enabled BOOLEAN DEFAULT true,"
    " connection_status varchar(20), last_tested_at TIMESTAMP, test_status varchar(20),"
    " test_error_message TEXT, created_at TIMESTAMP DEFAULT now(), updated_at TIMESTAMP"
    " DEFAULT now())"
)
SEED_ROWS = (
    "INSERT INTO data_sources SELECT 'src-' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE"
    " 'Source ' || g END, NULL, 'http', json_build_object('url', 'http://127.0.0.1:8080/' || g,"
    " 'apiKey', 'k'), true, CASE WHEN g % 3 = 0 THEN 'ENABLED' ELSE 'connected' END,"
    " now()::timestamp, 'success', NULL, now()::timestamp, now()::timestamp"
    " FROM generate_series(1, %s) AS g"
)
BACKEND_INSERT = (
    "INSERT INTO data_sources (id, name, type, plugin, config, enabled)"
    " VALUES (%s, %s, %s, 'http', %s, true)"
)


def timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def cli(url: str, *args: str) -> None:
    env = {**os.environ, "HEALTHD_DATABASE_URL": url}
    proc = subprocess.run(
        [sys.executable, "-m", "healthd", *args], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)


def backend_inserts(url: str, n: int) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            BACKEND_INSERT,
            [
                (f"late-{i}", f"Late {i}", "http", json.dumps({"url": f"http://x/{i}"}))
                for i in range(n)
            ],
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rows: list[tuple[str, str]] = []
    sources = [
        {"id": f"imp-{i}", "plugin": "http", "config": {"url": f"http://127.0.0.1:8080/{i}"}}
        for i in range(n)
    ]
    with embedded.throwaway("healthd-bench-pg-") as cluster, tempfile.TemporaryDirectory() as tmp:
        urls = {}
        for name in ("adopted", "native", "adopted_empty"):
            embedded.create_database(cluster.url(), name)
            urls[name] = cluster.url(name)
        with psycopg.connect(urls["adopted"], autocommit=True) as conn:
            conn.execute(SEED_DDL)
            conn.execute(SEED_ROWS.replace("%s", str(n)))
        with psycopg.connect(urls["adopted_empty"], autocommit=True) as conn:
            conn.execute(SEED_DDL)
        took = timed(lambda: cli(urls["adopted"], "migrate"))
        rows.append((f"`healthd migrate` adopting {n:,} original rows", f"{took:.2f} s"))
        migrate.apply(urls["native"])
        cli(urls["adopted_empty"], "migrate")
        k = min(n, 10_000)
        for label in ("native", "adopted"):
            took = timed(lambda label=label: backend_inserts(urls[label], k))
            rows.append((f"backend INSERT x {k:,}, {label} table", f"{k / took:,.0f} rows/s"))
        path = Path(tmp) / "sources.json"
        path.write_text(json.dumps({"sources": sources}))
        for label in ("native", "adopted_empty"):
            took = timed(lambda label=label: cli(urls[label], "sources", "import", str(path)))
            rows.append((f"`healthd sources import` of {n:,}, {label} table", f"{took:.2f} s"))
        took = timed(lambda: cli(urls["adopted"], "migrate", "--status"))
        rows.append((f"`healthd migrate --status` after adopting {n:,} rows", f"{took:.2f} s"))
        looks = [timed(lambda: migrate.state(urls["adopted"], details=False)) for _ in range(20)]
        rows.append(
            ("schema gate: one look (median of 20)", f"{statistics.median(looks) * 1000:.1f} ms")
        )
    width = max(len(r[0]) for r in rows)
    for what, figure in rows:
        print(f"| {what.ljust(width)} | {figure} |")


if __name__ == "__main__":
    main()
