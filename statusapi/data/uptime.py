"""Exact uptime from a source's transitions (docs/status-page.md). Pure: no I/O, no clock.

A source's time is split by what it was in: ``up`` (connected), ``down`` (disconnected or
error), ``unknown`` (created but not yet confirmed either way), and ``maintenance`` (inside
a maintenance window, whatever it was). ``uptime = up / (up + down)``; unknown and
maintenance time are counted apart and held against nobody. Time before the source was
created counts as nothing at all.

The timeline is cut into segments once, kept per kind with the running total of the
segments before each, so the seconds of a kind in any interval are two binary searches:
four windows and 90 days cost one pass over the transitions plus a few hundred searches.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from healthd.core.words import CONNECTED, DOWN, STATUSES, UNKNOWN

DAY = 86400.0
WINDOWS: dict[str, float] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY}
DAYS = 90
KINDS = ("up", "down", "unknown", "maintenance")
# statuses by name or by first letter (as the uptime query sends them)
_BY_WORD = {CONNECTED: 0, **dict.fromkeys(DOWN, 1), UNKNOWN: 2}
_KIND = {**_BY_WORD, **{w[0]: k for w, k in _BY_WORD.items()}}
assert len({w[0] for w in STATUSES}) == len(STATUSES)  # the first letters tell them apart
Figures = dict[str, float | None]


class Timeline:
    """What one source was from its creation (or ``since``) on.

    ``transitions``: (epoch seconds, to_status), oldest first; the one before ``since`` (if
    any) gives the state the range starts in. ``maintenance``: (start, end) epochs. The
    last state lasts until whatever ``now`` a question is asked at."""

    def __init__(
        self,
        transitions: Iterable[tuple[float, str]],
        created_at: float,
        since: float,
        maintenance: Sequence[tuple[float, float]] = (),
    ) -> None:
        begin = max(created_at, since)
        kind = 2  # unknown until the first transition after creation
        points = [begin]
        kinds: list[int] = []
        kind_of = _KIND.get
        for at, to in transitions:
            k = kind_of(to, 2)
            if k == kind or at < created_at:
                continue  # no change; or an earlier source with the same id: not this one's
            if at <= begin:
                kind = k
            else:
                kinds.append(kind)
                points.append(at)
                kind = k
        kinds.append(kind)
        if maintenance:
            points, kinds = _overlay(points, kinds, maintenance)
        self.begin = begin
        # per kind: segment starts, ends, and the seconds of that kind before each segment
        self.starts: list[list[float]] = [[], [], [], []]
        self.ends: list[list[float]] = [[], [], [], []]
        self.before: list[list[float]] = [[], [], [], []]
        totals = [0.0, 0.0, 0.0, 0.0]
        ends = points[1:]
        ends.append(math.inf)
        starts, ends_k, before = self.starts, self.ends, self.before
        for start, end, k in zip(points, ends, kinds, strict=True):
            starts[k].append(start)
            ends_k[k].append(end)
            before[k].append(totals[k])
            totals[k] += end - start

    def _upto(self, k: int, t: float) -> float:
        """Seconds of kind k before t."""
        starts = self.starts[k]
        i = bisect_right(starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[k][i] + min(t, self.ends[k][i]) - starts[i]

    def between(self, start: float, end: float, now: float) -> Figures:
        end = min(end, now)
        start = min(start, end)
        secs = [round(self._upto(k, end) - self._upto(k, start), 3) for k in range(4)]
        up, down = secs[0], secs[1]
        return {
            "uptime": round(100.0 * up / (up + down), 4) if up + down > 0 else None,
            "up_s": up,
            "down_s": down,
            "unknown_s": secs[2],
            "maintenance_s": secs[3],
        }

    def windows(self, now: float) -> dict[str, Figures]:
        return {name: self.between(now - span, now, now) for name, span in WINDOWS.items()}

    def daily(self, now: float, days: int = DAYS) -> list[dict[str, object]]:
        """The last ``days`` UTC days, oldest first; today counts up to now."""
        today = now - now % DAY
        out: list[dict[str, object]] = []
        for n in range(days - 1, -1, -1):
            start = today - n * DAY
            fig = self.between(start, start + DAY, now)
            out.append(
                {
                    "date": datetime.fromtimestamp(start, UTC).date().isoformat(),
                    "uptime": fig["uptime"],
                    "down_s": fig["down_s"],
                }
            )
        return out


def _overlay(
    points: list[float], kinds: list[int], windows: Sequence[tuple[float, float]]
) -> tuple[list[float], list[int]]:
    """The same change points with every moment inside a window marked as maintenance."""
    marks = sorted({*points, *(t for w in windows for t in w if t > points[0])})
    out_t: list[float] = []
    out_k: list[int] = []
    for i, t in enumerate(marks):
        end = marks[i + 1] if i + 1 < len(marks) else t + 1.0
        mid = (t + end) / 2
        inside = any(s <= mid < e for s, e in windows)
        k = 3 if inside else kinds[bisect_right(points, t) - 1]
        if out_k and out_k[-1] == k:
            continue
        out_t.append(t)
        out_k.append(k)
    return out_t, out_k
