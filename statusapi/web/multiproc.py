"""The API's request counters summed over every gunicorn worker.

Each gunicorn worker is its own process with its own counters; a scrape lands on one of
them, so six scrapes in a row used to read 1, 2, 3, 4, 3, 4 and Prometheus saw counter
resets. prometheus_client's multiprocess mode keeps every worker's values in a file of
its own under PROMETHEUS_MULTIPROC_DIR and sums the files at scrape time.

gunicorn's configuration (deploy/gunicorn.conf.py) calls ``prepare`` in the master
before any worker starts (prometheus_client reads the variable when it is first
imported): an operator's directory is emptied of a previous run's files, otherwise a
private one is made and removed again on exit. ``child_exit`` tells prometheus_client a
worker is gone (its counters stay in the sum, so a restarted worker does not make a
counter go backwards). Without the variable (Flask's test client, another server) the
counters are this process's own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
_made: str | None = None  # the directory prepare() created, removed by on_exit()


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def prepare(environ: MutableMapping[str, str] | None = None) -> str:
    global _made
    env = os.environ if environ is None else environ
    path = env.get(ENV, "").strip()
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    _made = tempfile.mkdtemp(prefix="statusapi-metrics-")
    env[ENV] = _made
    return _made


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _made is not None:
        shutil.rmtree(_made, ignore_errors=True)
