"""Latency rollups kept in memory until their minute closes. Pure (no I/O), owned by the
event loop's thread; the writer takes the closed buckets with the next result batch.

Why in memory: written per result, the rollup upsert doubled the rows the result batch
writes (a second row per result). Summed here per source and minute, a source probed
every second costs one rollup row a minute instead of sixty, one probed every 30 s one
instead of two. The sums are additive (the upsert adds to a row already there), so a
bucket written in parts (at stop, or after an outage) still adds up.

Fenced like the results: an entry keeps the lease generation its probes were made under
(one entry per generation), and the writing statement drops those whose generation has
moved on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from healthd.core import rollups
from healthd.core.phases import NAMES
from healthd.core.words import CONNECTED
from healthd.store.codec import ResultRow, ts
from healthd.store.leases import shard_of

log = logging.getLogger("healthd.store")

# source-minutes held (~350 bytes each): 100,000 sources over three minutes; past it (a
# long outage) the oldest minutes are dropped, logged once
MAX_ENTRIES = 300_000

# (source, bucket start epoch, generation) ->
#     [count, failures, max_ms, *hist, phased, *phase sums (core/phases.py NAMES order)]
Key = tuple[str, int, int | None]
Entry = list[Any]
Taken = dict[Key, Entry]
PHASED = 3 + rollups.SLOTS  # where an entry's phase count is; its sums follow
# a new entry: floats for the sums (they are COPYed as float8)
_NEW: tuple[Any, ...] = (0, 0, None, *([0] * rollups.SLOTS), 0, *([0.0] * len(NAMES)))


class Rollups:
    """Entries by bucket (the minute's start, epoch seconds), so a flush looks only at the
    minutes that closed, not at every source."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.open: dict[int, dict[tuple[str, int | None], Entry]] = {}
        self.max_entries = max_entries
        self.size = 0
        self.dropped = 0  # source-minutes given up (an outage longer than the bound)

    def __bool__(self) -> bool:
        return bool(self.open)

    def __len__(self) -> int:
        return self.size

    def _new(self) -> None:
        self.size += 1
        while self.size > self.max_entries and len(self.open) > 1:
            # through a long outage: the oldest minute goes, as the oldest events do
            lost = self.open.pop(min(self.open))
            self.size -= len(lost)
            if not self.dropped:
                log.error(
                    "latency rollups held in memory reached %d: dropping the oldest minutes"
                    " until the database is back",
                    self.max_entries,
                )
            self.dropped += len(lost)

    def add(self, row: ResultRow) -> None:
        at = row.obs.at
        bucket = self.open.setdefault(int(at - at % rollups.BUCKET_S), {})
        key = (row.source_id, row.gen)
        e: Entry | None = bucket.get(key)
        if e is None:
            e = bucket[key] = list(_NEW)
            self._new()
        e[0] += 1
        if row.obs.status != CONNECTED:
            e[1] += 1  # a failure's time is not a latency of the service
            return
        if row.latency_ms is not None:
            lat = row.latency_ms
            e[2] = lat if e[2] is None or lat > e[2] else e[2]
            e[3 + rollups.slot(lat)] += 1
        ph = row.phases
        if ph is not None:
            e[PHASED] += 1
            e[PHASED + 1] += ph[0]
            e[PHASED + 2] += ph[1]
            e[PHASED + 3] += ph[2]
            e[PHASED + 4] += ph[3]
            e[PHASED + 5] += ph[4]

    def take(self, now: float | None, limit: int | None = None) -> Taken:
        """The buckets closed by ``now`` (all of them when ``now`` is None), oldest first,
        at most ``limit`` entries; they leave. At most one entry per (source, bucket): a
        second one (the same minute under another lease generation) waits for the next
        take, so the upsert never meets one row twice in one statement.

        Why a limit: at 50,000 sources a minute closes with 50,000 entries at once; written
        in one batch they held the writer thread (and the GIL) long enough to make every
        probe due meanwhile late. In slices they go over a few flushes instead."""
        cut = None if now is None else now - rollups.BUCKET_S
        out: Taken = {}
        for start in sorted(b for b in self.open if cut is None or b <= cut):
            entries = self.open[start]
            seen: set[str] = set()
            moved: list[tuple[str, int | None]] = []
            for key, e in entries.items():
                if limit is not None and len(out) >= limit:
                    break
                sid, gen = key
                if sid in seen:
                    continue
                seen.add(sid)
                out[(sid, start, gen)] = e
                moved.append(key)
            for key in moved:
                del entries[key]
            if not entries:
                del self.open[start]
            if limit is not None and len(out) >= limit:
                break
        self.size -= len(out)
        return out

    def restore(self, taken: Taken) -> None:
        """Put unwritten entries back, added to whatever came in since."""
        for (sid, start, gen), e in taken.items():
            bucket = self.open.setdefault(start, {})
            cur = bucket.get((sid, gen))
            if cur is None:
                bucket[(sid, gen)] = e
                self._new()
                continue
            cur[0] += e[0]
            cur[1] += e[1]
            if e[2] is not None and (cur[2] is None or e[2] > cur[2]):
                cur[2] = e[2]
            for i in range(3, len(cur)):
                cur[i] += e[i]


def copy_rows(taken: Taken) -> Iterator[tuple[Any, ...]]:
    """Rows for the rollups temp table (status.ROLLUPS_TEMP)."""
    starts: dict[int, datetime] = {}
    for (sid, bucket, gen), e in taken.items():
        start = starts.get(bucket) or starts.setdefault(bucket, ts(bucket))
        yield (sid, start, e[0], e[1], e[2], shard_of(sid), gen, *e[3:])
