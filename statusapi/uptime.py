"""Exact uptime from a source's transitions (interface.md §10). Pure: no I/O, no clock.

A source's time is split by what it was in: ``up`` (connected), ``down`` (disconnected or
error), ``unknown`` (created but not yet confirmed either way), and ``maintenance`` (inside
a maintenance window, whatever it was). ``uptime = up / (up + down)``; unknown and
maintenance time are counted apart and held against nobody. Time before the source was
created counts as nothing at all.

The timeline is turned into cumulative seconds per kind at each change point once, so the
time spent in any interval is two binary searches: a 90-day window, 90 days and four
windows cost one pass over the transitions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

DAY = 86400.0
WINDOWS: dict[str, float] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY}
DAYS = 90
KINDS = ("up", "down", "unknown", "maintenance")
_KIND = {"connected": 0, "disconnected": 1, "error": 1, "unknown": 2}


class Timeline:
    """What one source was, from its creation (or ``since``) up to ``now``.

    ``transitions``: (epoch seconds, to_status), oldest first; the one before ``since``
    (if any) gives the state the range starts in. ``maintenance``: (start, end) epochs."""

    def __init__(
        self,
        transitions: Iterable[tuple[float, str]],
        created_at: float,
        since: float,
        now: float,
        maintenance: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.now = now
        begin = max(created_at, since)
        kind = 2  # unknown until the first transition after creation
        times: list[float] = [begin]
        kinds: list[int] = []
        for at, to in transitions:
            if at < created_at:
                continue  # an earlier source with the same id: not this one's history
            k = _KIND.get(to, 2)
            if at <= begin:
                kind = k
                continue
            if at >= now:
                break
            kinds.append(kind)
            times.append(at)
            kind = k
        kinds.append(kind)
        if maintenance:
            times, kinds = _overlay(times, kinds, maintenance)
        self.times = times
        self.kinds = kinds
        # cum[j][i]: seconds of kind j in [times[0], times[i]]
        cum = [[0.0] * len(times) for _ in KINDS]
        for i in range(1, len(times)):
            span = times[i] - times[i - 1]
            k = kinds[i - 1]
            for j in range(4):
                cum[j][i] = cum[j][i - 1] + (span if j == k else 0.0)
        self.cum = cum

    def _at(self, t: float) -> list[float]:
        """Seconds of each kind in [times[0], t]."""
        if t <= self.times[0]:
            return [0.0, 0.0, 0.0, 0.0]
        t = min(t, self.now)
        i = bisect_right(self.times, t) - 1
        extra = t - self.times[i]
        k = self.kinds[i]
        return [self.cum[j][i] + (extra if j == k else 0.0) for j in range(4)]

    def between(self, start: float, end: float) -> dict[str, float | None]:
        a, b = self._at(start), self._at(end)
        secs = [round(max(0.0, y - x), 3) for x, y in zip(a, b, strict=True)]
        up, down = secs[0], secs[1]
        return {
            "uptime": round(100.0 * up / (up + down), 4) if up + down > 0 else None,
            "up_s": up,
            "down_s": down,
            "unknown_s": secs[2],
            "maintenance_s": secs[3],
        }

    def windows(self) -> dict[str, dict[str, float | None]]:
        return {name: self.between(self.now - span, self.now) for name, span in WINDOWS.items()}

    def daily(self, days: int = DAYS) -> list[dict[str, object]]:
        """The last ``days`` UTC days, oldest first; today counts up to now."""
        today = self.now - self.now % DAY
        out: list[dict[str, object]] = []
        for n in range(days - 1, -1, -1):
            start = today - n * DAY
            fig = self.between(start, start + DAY)
            out.append(
                {
                    "date": datetime.fromtimestamp(start, UTC).date().isoformat(),
                    "uptime": fig["uptime"],
                    "down_s": fig["down_s"],
                }
            )
        return out


def _overlay(
    times: list[float], kinds: list[int], windows: Sequence[tuple[float, float]]
) -> tuple[list[float], list[int]]:
    """The same timeline with every moment inside a window marked as maintenance."""
    marks = sorted({*times, *(t for w in windows for t in w if times[0] < t)})
    out_t: list[float] = []
    out_k: list[int] = []
    for i, t in enumerate(marks):
        end = marks[i + 1] if i + 1 < len(marks) else t + 1.0
        mid = (t + end) / 2
        inside = any(s <= mid < e for s, e in windows)
        k = 3 if inside else kinds[bisect_right(times, t) - 1]
        if out_k and out_k[-1] == k:
            continue
        out_t.append(t)
        out_k.append(k)
    return out_t, out_k
