"""Every source's transitions over the last 90 days, kept per worker for the /status page.

The page shows uptime and a 90-day bar for every source; reading 90 days of history for
1,000 sources on each request would cost more than the rest of the page. So each worker
loads it once, then follows the history table by id (one small indexed query per
request, like the SSE tail), and recomputes a source's figures only when it has a new
transition or once a minute (the windows roll). A full reload every few minutes
re-anchors the 90-day range and forgets what fell out of it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from statusapi import queries
from statusapi.uptime import DAYS, Timeline

RELOAD_S = 600.0
TAIL_PAGE = 5000  # more new rows than this at once: reload instead of following


@dataclass
class Figures:
    windows: dict[str, dict[str, float | None]]
    daily: list[dict[str, Any]]
    key: tuple[int, int]
    cached: dict[str, Any] = field(default_factory=dict)  # rendered fragments, by the page


class Timelines:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = -RELOAD_S
        self.head = 0
        self.since = 0.0
        self.by_source: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.version: dict[str, int] = defaultdict(int)
        self.memo: dict[str, Figures] = {}

    def refresh(self) -> None:
        """Bring the transitions up to date with the table (under the lock)."""
        with self.lock:
            if time.monotonic() - self.loaded_at > RELOAD_S:
                self._load()
                return
            rows = queries.transitions_after(self.head, TAIL_PAGE)
            if len(rows) == TAIL_PAGE:
                self._load()
                return
            for hid, sid, at, to, event in rows:
                if event == "transition":
                    self.by_source[sid].append((at, to))
                    self.version[sid] += 1
                self.head = hid

    def _load(self) -> None:
        head = queries.last_event_id()  # first: rows after it are followed next time
        since, rows = queries.all_transitions(DAYS)
        by_source: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for sid, at, to in rows:
            by_source[sid].append((at, to))
        for lst in by_source.values():
            lst.sort()
        self.by_source = by_source
        for sid in self.version:
            self.version[sid] += 1
        self.head, self.since, self.loaded_at = head, since, time.monotonic()

    def figures(self, source_id: str, created_at: float, now: float) -> Figures:
        """The source's windows and daily figures as of ``now`` (cached for the minute)."""
        with self.lock:
            key = (self.version[source_id], int(now // 60))
            memo = self.memo.get(source_id)
            if memo is not None and memo.key == key:
                return memo
            transitions = list(self.by_source.get(source_id, ()))
            since = self.since
        tl = Timeline(transitions, created_at=created_at, since=since, now=now)
        fig = Figures(tl.windows(), tl.daily(), key)
        with self.lock:
            self.memo[source_id] = fig
        return fig


def of(app: Flask) -> Timelines:
    t: Timelines | None = app.extensions.get("healthd_timelines")
    if t is None:
        t = app.extensions.setdefault("healthd_timelines", Timelines())
    assert t is not None
    return t
