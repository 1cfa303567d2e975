"""Every source's transitions over the last 90 days, kept per worker for the /status page.

The page shows uptime and a 90-day bar for every source; reading 90 days of history for
1,000 sources on each request would cost more than the rest of the page. So each worker
loads it once, then follows the history table by id (one small indexed query per
request, like the SSE tail). A source's timeline is rebuilt only when it has a new
transition; its figures are recomputed then, and otherwise once a minute as the windows
roll, at most REFRESH_PER_REQUEST sources per request so that no single request pays for
all of them. A full reload every hour re-anchors the 90-day range.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from statusapi.data import queries
from statusapi.data.uptime import DAYS, Figures, Timeline

_serials = itertools.count()
RELOAD_S = 3600.0
TAIL_PAGE = 5000  # more new rows than this at once: reload instead of following
STALE_S = 60.0  # figures older than this are recomputed (within the budget below)
REFRESH_PER_REQUEST = 200


@dataclass
class SourceFigures:
    windows: dict[str, Figures]
    daily: list[dict[str, Any]]
    version: int
    at: float
    serial: int  # unique per computation: what a rendered row remembers it was drawn from
    cached: dict[str, Any] = field(default_factory=dict)  # rendered fragments, by the page


class Timelines:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = -RELOAD_S
        self.head = 0
        self.since = 0.0
        self.by_source: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.version: dict[str, int] = defaultdict(int)
        self.timelines: dict[str, tuple[int, float, Timeline]] = {}
        self.memo: dict[str, SourceFigures] = {}
        self.spans: dict[str, list[tuple[float, float]]] = {}

    def refresh(self) -> None:
        """Bring the transitions and maintenance windows up to date with the tables."""
        with self.lock:
            if time.monotonic() - self.loaded_at > RELOAD_S:
                self._load()
            else:
                rows = queries.transitions_after(self.head, TAIL_PAGE)
                if len(rows) == TAIL_PAGE:
                    self._load()
                else:
                    for hid, sid, at, to, event in rows:
                        if event == "transition":
                            self.by_source[sid].append((at, to))
                            self.version[sid] += 1
                        self.head = hid
            # maintenance windows (a small table): their occurrences over the whole range
            # and a day ahead, so an open window's growing part needs no refetch
            spans = queries.all_maintenance_spans(self.since, self.since + (DAYS + 2) * 86400.0)
            for sid in spans.keys() ^ self.spans.keys() | {
                k for k in spans.keys() & self.spans.keys() if spans[k] != self.spans[k]
            }:
                self.version[sid] += 1
            self.spans = spans

    def _load(self) -> None:
        head = queries.last_event_id()  # first: rows after it are followed next time
        since, rows = queries.all_transitions(DAYS)
        by_source: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for sid, at, to in rows:
            by_source[sid].append((at, to))
        for lst in by_source.values():
            lst.sort()
        self.by_source = by_source
        for sid in list(self.version):
            self.version[sid] += 1
        self.head, self.since, self.loaded_at = head, since, time.monotonic()

    def _timeline(self, source_id: str, created_at: float) -> tuple[int, Timeline]:
        with self.lock:
            version = self.version[source_id]
            have = self.timelines.get(source_id)
            if have is not None and have[0] == version and have[1] == created_at:
                return version, have[2]
            transitions = list(self.by_source.get(source_id, ()))
            since = self.since
            spans = self.spans.get(source_id, [])
        tl = Timeline(transitions, created_at=created_at, since=since, maintenance=spans)
        with self.lock:
            self.timelines[source_id] = (version, created_at, tl)
        return version, tl

    def figures(
        self, source_id: str, created_at: float, now: float, budget: list[int]
    ) -> SourceFigures:
        """The source's windows and daily figures as of about ``now``: recomputed when it
        has new transitions, or when they are a minute old and ``budget`` (a one-element
        counter shared by one request) allows."""
        memo = self.memo.get(source_id)
        version = self.version.get(source_id, 0)
        if memo is not None and memo.version == version:
            if now - memo.at < STALE_S or budget[0] <= 0:
                return memo
            budget[0] -= 1
        version, tl = self._timeline(source_id, created_at)
        fig = SourceFigures(tl.windows(now), tl.daily(now), version, now, next(_serials))
        self.memo[source_id] = fig
        return fig


def of(app: Flask) -> Timelines:
    t: Timelines | None = app.extensions.get("healthd_timelines")
    if t is None:
        t = app.extensions.setdefault("healthd_timelines", Timelines())
    assert t is not None
    return t
