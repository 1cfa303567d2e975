"""When a source's next probe is due, for every source the daemon takes on: at start-up,
after a resync (added or changed sources) and when shards move between daemons. One rule:

- a source probed with its current definition is due at its last probe plus its period
  (the retry interval while a change is pending), wherever that probe ran: a source
  handed over from another daemon keeps its cadence instead of waiting a lease round
  plus a random part of its interval;
- a source that is overdue, never probed, or changed since its last probe is due now,
  but the overdue ones start at the batch's own rate (its sources' 1/period summed, at
  least ``MIN_RATE`` per second) in order of how overdue they are, so a daemon starting
  after an outage spreads the backlog over about one interval instead of starting every
  probe at once, and keeps each source's phase from before.

Pure: times are the event loop's monotonic clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

MIN_RATE = 200.0  # overdue probes per second at least: a handful start within a second


@dataclass(frozen=True)
class Candidate:
    id: str
    period: float  # seconds between probes (retry interval while a change is pending)
    natural: float | None  # last probe + period on the monotonic clock; None: due now


def _hash(source_id: str) -> float:
    return zlib.crc32(source_id.encode()) / 2**32


def natural_due(
    now_mono: float,
    now_wall: float,
    last_probe_wall: float | None,
    changed_wall: float | None,
    period: float,
) -> float | None:
    """Last probe + period on the monotonic clock; None when the source was never probed
    or its definition changed after its last probe (that probe tested something else)."""
    if last_probe_wall is None:
        return None
    if changed_wall is not None and changed_wall > last_probe_wall:
        return None
    return now_mono + (last_probe_wall + period - now_wall)


def place(
    candidates: Iterable[Candidate], now: float, min_rate: float = MIN_RATE
) -> dict[str, float]:
    """Due time per source id."""
    items = list(candidates)
    due: dict[str, float] = {}
    overdue: list[tuple[float, float, Candidate]] = []
    rate = 0.0
    for c in items:
        rate += 1.0 / max(c.period, 1e-3)
        if c.natural is not None and c.natural > now:
            due[c.id] = c.natural
        else:
            # most overdue first; never-probed ones last, in a stable hashed order
            key = c.natural if c.natural is not None else float("inf")
            overdue.append((key, _hash(c.id), c))
    rate = max(rate, min_rate)
    overdue.sort(key=lambda t: (t[0], t[1]))
    for k, (_, _, c) in enumerate(overdue):
        due[c.id] = now + min(k / rate, c.period)
    return due
