"""Exact uptime from a source's transitions (docs/status-page.md). Pure: no I/O, no clock.

A source's time is split by what it was in: ``up`` (connected), ``down`` (disconnected or
error), ``unknown`` (created but not yet confirmed either way), and ``maintenance`` (inside
a maintenance window, whatever it was). ``uptime = up / (up + down)``; unknown and
maintenance time are counted apart and held against nobody. Time before the source was
created counts as nothing at all.

Two ways to the same figures. ``Timeline`` reads every transition of the range: exact,
but a source that flaps every few seconds has millions in 90 days. ``Plan`` (what the
API serves) reads the daily rollup the daemon keeps (migrations/0015_uptime_days.sql):
a closed day is one row, and only the parts of days that a figure cuts (today, so far;
the first day of a window; a maintenance window) are asked of the transitions, each
within one day. tests/integration/test_uptime_days.py holds the two against each other.

The timeline is cut into segments once, kept per kind with the running total of the
segments before each, so the seconds of a kind in any interval are two binary searches:
four windows and 90 days cost one pass over the transitions plus a few hundred searches.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
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


Seconds = tuple[float, float, float]  # up, down, unknown


def _merged(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


class Plan:
    """The figures of one source as of ``now`` from its daily rollup.

    The range every figure reads (from the start of the day the 90-day window begins in,
    or the creation, to now) is cut into atoms at every day boundary, window start,
    maintenance edge and the creation: each atom lies in one day and is either wholly
    inside maintenance or wholly outside it. An atom outside maintenance counts its
    seconds up, down and unknown; one inside counts as maintenance, whatever it was.

    Where the seconds come from: a closed day with a rollup row (``rolled``: day start ->
    seconds) gives the whole day; of its atoms, all but the longest one outside
    maintenance are asked of the transitions (``asks``) and the longest is the row minus
    them, so a day no figure cuts asks nothing. Any other day (today, a day not rolled up
    yet) asks every atom outside maintenance. ``figures(answers)`` then adds them up."""

    def __init__(
        self,
        now: float,
        created_at: float,
        rolled: dict[float, Seconds],
        maintenance: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.now = now
        self.created_at = created_at
        first = now - WINDOWS["90d"]
        begin = max(created_at, first - first % DAY)
        spans = [(max(s, begin), min(e, now)) for s, e in _merged(maintenance)]
        spans = [(s, e) for s, e in spans if s < e]
        cuts = {begin, now}
        day = begin - begin % DAY + DAY
        while day < now:
            cuts.add(day)
            day += DAY
        cuts.update(now - span for span in WINDOWS.values() if now - span > begin)
        for s, e in spans:
            cuts.update((s, e))
        points = sorted(t for t in cuts if begin <= t <= now)
        # (start, end, inside maintenance)
        self.atoms: list[tuple[float, float, bool]] = []
        j = 0
        for lo, hi in zip(points, points[1:], strict=False):
            while j < len(spans) and spans[j][1] <= lo:
                j += 1
            inside = j < len(spans) and spans[j][0] <= lo
            self.atoms.append((lo, hi, inside))
        self.asks: list[tuple[float, float]] = []
        self._ask_of: dict[int, int] = {}  # atom index -> its ask's index
        self._derived: dict[int, tuple[Seconds, list[int]]] = {}  # atom -> (row, others)
        by_day: dict[float, list[int]] = {}
        for i, (lo, _, _) in enumerate(self.atoms):
            by_day.setdefault(lo - lo % DAY, []).append(i)
        today = now - now % DAY
        for start, members in by_day.items():
            row = rolled.get(start) if start < today else None
            outside = [i for i in members if not self.atoms[i][2]]
            if row is not None and outside:
                longest = max(outside, key=lambda i: self.atoms[i][1] - self.atoms[i][0])
                others = [i for i in members if i != longest]
                self._derived[longest] = (row, others)
                need = others
            else:
                need = outside
            for i in need:
                self._ask_of[i] = len(self.asks)
                self.asks.append(self.atoms[i][:2])

    def figures(
        self, answers: Sequence[Seconds]
    ) -> tuple[dict[str, Figures], list[dict[str, object]]]:
        """(windows, daily) as Timeline.windows and Timeline.daily give them, from the
        seconds of each ask, in order."""
        known: dict[int, Seconds] = {i: answers[k] for i, k in self._ask_of.items()}
        for i, (row, others) in self._derived.items():
            rest = [known[k] for k in others]
            known[i] = (
                max(0.0, row[0] - sum(r[0] for r in rest)),
                max(0.0, row[1] - sum(r[1] for r in rest)),
                max(0.0, row[2] - sum(r[2] for r in rest)),
            )
        # running totals of up, down, unknown, maintenance before each atom
        prefix = [(0.0, 0.0, 0.0, 0.0)]
        for i, (lo, hi, inside) in enumerate(self.atoms):
            p = prefix[-1]
            if inside:
                prefix.append((p[0], p[1], p[2], p[3] + hi - lo))
            else:
                k = known[i]
                prefix.append((p[0] + k[0], p[1] + k[1], p[2] + k[2], p[3]))
        starts = [a[0] for a in self.atoms]
        now = self.now

        def total(lo: float, hi: float) -> Figures:
            # atoms are cut at every day and window start, so [lo, hi) is whole atoms
            a, b = prefix[bisect_left(starts, lo)], prefix[bisect_left(starts, min(hi, now))]
            up, down = round(b[0] - a[0], 3), round(b[1] - a[1], 3)
            return {
                "uptime": round(100.0 * up / (up + down), 4) if up + down > 0 else None,
                "up_s": up,
                "down_s": down,
                "unknown_s": round(b[2] - a[2], 3),
                "maintenance_s": round(b[3] - a[3], 3),
            }

        windows = {name: total(now - span, now) for name, span in WINDOWS.items()}
        today = now - now % DAY
        daily: list[dict[str, object]] = []
        for n in range(DAYS - 1, -1, -1):
            start = today - n * DAY
            fig = total(start, start + DAY)
            daily.append(
                {
                    "date": datetime.fromtimestamp(start, UTC).date().isoformat(),
                    "uptime": fig["uptime"],
                    "down_s": fig["down_s"],
                }
            )
        return windows, daily
