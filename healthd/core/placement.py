"""When a source's next probe is due, for every source the daemon takes on: at start-up,
after a resync (added or changed sources) and when shards move between daemons. One rule:

- a source probed with its current definition is naturally due at its last probe plus
  its period (the retry interval while a change is pending), wherever that probe ran: a
  source handed over from another daemon keeps its cadence instead of waiting a lease
  round plus a random part of its interval;
- a source that is overdue, never probed, or changed since its last probe is due now;
- and the batch is released no faster than its own rate (its sources' 1/period summed,
  at least ``MIN_RATE`` per second), in order of when each is due (changed and new ones
  first, in a stable hashed order, then the most overdue): those due now at that rate, so a
  daemon starting cold or after an outage spreads its backlog over one interval; the
  others a quarter faster than it, so sources already spread keep their time (the queue
  never builds up) while bunched ones (probed at one moment under a shorter interval)
  are spread out again. Nobody is placed more than one period after its natural time.
- and nobody is placed more than one period from now: the last probe's time was written
  on the clock of whichever daemon probed (or by hand with SQL), and one running an hour
  ahead would otherwise hold the source back for that hour after a take-over.

Pure: times are the event loop's monotonic clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

MIN_RATE = 200.0  # overdue probes per second at least: a handful start within a second
SPREAD = 1.25  # how much faster than the batch's rate sources not yet due may be released


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
    or its definition changed after its last probe (that probe tested something else).
    The last probe's time comes from another clock (see the module's docstring): it may
    lie in the future, and ``place`` bounds what this returns by now + period."""
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
    rate = max(min_rate, sum(1.0 / max(c.period, 1e-3) for c in items))
    queue = sorted(
        items,
        key=lambda c: (
            _key(c, now),
            0 if c.natural is None else 1,  # among those due now: changed or new first,
            c.natural if c.natural is not None else 0.0,  # then the most overdue
            _hash(c.id),
        ),
    )
    due: dict[str, float] = {}
    t = now - 1.0 / rate
    for c in queue:
        key = _key(c, now)
        step = 1.0 / rate if key <= now else 1.0 / (SPREAD * rate)
        t = min(max(key, t + step), key + c.period, now + c.period)
        due[c.id] = t
    return due


def _key(c: Candidate, now: float) -> float:
    """When the source would be due on its own: its natural time, but not before now and
    never more than one period from now (a last probe stamped by a clock ahead of ours)."""
    if c.natural is None or c.natural <= now:
        return now
    return min(c.natural, now + c.period)
