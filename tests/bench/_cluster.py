"""A throwaway PostgreSQL for the benchmarks (the same helper as `healthd up` and the tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from healthd.local import embedded
from healthd.store import migrate


@contextlib.contextmanager
def migrated_database(name: str = "bench") -> Iterator[str]:
    with embedded.throwaway("healthd-bench-pg-") as cluster:
        embedded.create_database(cluster.url(), name)
        url = cluster.url(name)
        migrate.apply(url)
        yield url
