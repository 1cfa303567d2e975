"""P10: `healthd sources import` of N generated sources (default 100,000).

Run: python tests/bench/bench_import.py [N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import migrated_database  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    sources = [
        {
            "id": f"src-{i}",
            "plugin": "http",
            "name": f"Source {i}",
            "config": {"url": f"http://127.0.0.1:8080/{i}", "headers": {"X-Key": {"env": "K"}}},
        }
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as tmp, migrated_database() as url:
        path = Path(tmp) / "sources.json"
        path.write_text(json.dumps({"sources": sources}))
        env = {**os.environ, "HEALTHD_DATABASE_URL": url}
        rows = []
        for label in ("first import (insert)", "second import (unchanged)"):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "healthd", "sources", "import", str(path)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((label, time.perf_counter() - t, proc.stdout.strip()))
    print(f"| run ({n:,} sources) | seconds | result |\n|---|---|---|")
    for label, secs, out in rows:
        print(f"| {label} | {secs:.1f} | {out} |")


if __name__ == "__main__":
    main()
