"""A throwaway PostgreSQL for the benchmarks (the same helper as `healthd up` and the tests)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from healthd import embedded, migrate


@contextlib.contextmanager
def migrated_database(name: str = "bench") -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix="healthd-bench-pg-"))
    os.chmod(base, 0o755)
    cluster = embedded.Cluster(base)
    try:
        cluster.init()
        cluster.start()
        cluster.wait_ready()
        embedded.create_database(cluster.url(), name)
        url = cluster.url(name)
        migrate.apply(url)
        yield url
    finally:
        cluster.remove()
