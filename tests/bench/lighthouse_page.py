"""Lighthouse scores of /status and a detail page, with Debian's chromium.

Run: python tests/bench/lighthouse_page.py [--sources 40] [--lighthouse DIR]
Needs npm: Lighthouse is installed into DIR (default: a temporary folder) with
`npm install lighthouse@12`. statusapi runs under gunicorn (deploy/gunicorn.conf.py) on a
throwaway PostgreSQL holding --sources sources (one in twenty in error) with 100
transitions each over 90 days, as tests/bench/bench_page.py seeds them. Prints the four
category scores per page (desktop preset, no throttling: the machine is shared), with
the workers warmed by four requests first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import migrated_database  # noqa: E402
from bench_page import get, seed, start  # noqa: E402

CATEGORIES = ("performance", "accessibility", "best-practices", "seo")


def lighthouse(folder: Path) -> Path:
    binary = folder / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists():
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                folder,
                "lighthouse@12",
            ],
            check=True,
            timeout=600,
        )
    return binary


def scores(binary: Path, url: str, out: Path) -> dict[str, int]:
    subprocess.run(
        [
            str(binary),
            url,
            "--quiet",
            "--preset=desktop",
            "--throttling-method=provided",
            f"--only-categories={','.join(CATEGORIES)}",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            "--output=json",
            f"--output-path={out}",
        ],
        check=True,
        timeout=300,
        env={**os.environ, "CHROME_PATH": "/usr/bin/chromium"},
    )
    report = json.loads(out.read_text())
    return {c: round(report["categories"][c]["score"] * 100) for c in CATEGORIES}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=40)
    ap.add_argument("--lighthouse", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, migrated_database() as url:
        binary = lighthouse(args.lighthouse or Path(tmp))
        seed(url, args.sources)
        proc, port = start(url)
        try:
            base = f"http://127.0.0.1:{port}"
            # each worker loads its 90 days of transitions at its first /status (seconds
            # with 500,000 rows): measured warm, as a page in use is
            for _ in range(4):
                get(f"{base}/status")
            print("| page | " + " | ".join(CATEGORIES) + " |\n|---|---|---|---|---|")
            for path in ("/status", "/status/s20"):
                got = scores(binary, base + path, Path(tmp) / "report.json")
                print(
                    f"| `{path}` ({args.sources:,} sources) | "
                    + " | ".join(str(got[c]) for c in CATEGORIES)
                    + " |"
                )
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
