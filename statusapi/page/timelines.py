"""Every shown source's uptime figures, kept per worker for the /status page.

The page shows uptime and a 90-day bar for every source it lists. The figures come from
the daemon's daily rollup (statusapi/data/figures.py), for all the sources a request
needs at once, in two statements: nothing of the history is held here, so a worker's
memory does not grow with it. Each worker follows the history table by id (one small
indexed query per request, like the SSE tail): a source's figures are recomputed when it
has a new transition or its maintenance windows change, and otherwise once a minute as
the windows roll, at most REFRESH_PER_REQUEST sources per request so that no single
request pays for all of them.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from statusapi.data import figures as data_figures
from statusapi.data import queries
from statusapi.data.uptime import DAY, DAYS, WINDOWS, Figures

_serials = itertools.count()
TAIL_PAGE = 5000  # more new rows than this at once: recompute every source's figures
STALE_S = 60.0  # figures older than this are recomputed (within the budget below)
REFRESH_PER_REQUEST = 200
MAX_KEPT = 20_000  # sources whose figures a worker keeps; past it they are recomputed


@dataclass
class SourceFigures:
    windows: dict[str, Figures]
    daily: list[dict[str, Any]]
    version: int
    at: float
    created_at: float
    serial: int  # unique per computation: what a rendered row remembers it was drawn from
    cached: dict[str, Any] = field(default_factory=dict)  # rendered fragments, by the page


class Timelines:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.head: int | None = None
        self.version: dict[str, int] = defaultdict(int)
        self.memo: dict[str, SourceFigures] = {}
        self.spans: dict[str, list[tuple[float, float]]] = {}
        self.spans_since = 0.0

    def refresh(self, now: float) -> None:
        """Note which sources have new transitions or changed maintenance windows."""
        with self.lock:
            if self.head is None:
                self.head = queries.last_event_id()
            else:
                rows = queries.transitions_after(self.head, TAIL_PAGE)
                if len(rows) == TAIL_PAGE:
                    self.head = queries.last_event_id()
                    self.memo.clear()
                else:
                    for hid, sid, _at, _to, event in rows:
                        if event == "transition":
                            self.version[sid] += 1
                        self.head = hid
            # maintenance windows (a small table): their occurrences over the range the
            # figures read and a day ahead, from the start of a day so that the answer
            # stays the same all day unless a window changes
            since = now - now % DAY - (DAYS + 2) * DAY
            spans = queries.all_maintenance_spans(since, since + (DAYS + 4) * DAY)
            for sid in spans.keys() ^ self.spans.keys() | {
                k for k in spans.keys() & self.spans.keys() if spans[k] != self.spans[k]
            }:
                self.version[sid] += 1
            self.spans, self.spans_since = spans, since

    def figures(
        self, sources: list[tuple[str, float]], now: float, budget: list[int]
    ) -> dict[str, SourceFigures]:
        """Each (source id, created_at)'s windows and daily figures as of about ``now``:
        recomputed when it has new transitions, or when they are a minute old and
        ``budget`` (a one-element counter shared by one request) allows; all that need it
        in one batch."""
        out: dict[str, SourceFigures] = {}
        todo: list[str] = []
        for sid, created in sources:
            memo = self.memo.get(sid)
            if (
                memo is not None
                and memo.version == self.version.get(sid, 0)
                and memo.created_at == created
            ):
                if now - memo.at < STALE_S or budget[0] <= 0:
                    out[sid] = memo
                    continue
                budget[0] -= 1
            todo.append(sid)
        if todo:
            with self.lock:
                versions = {sid: self.version.get(sid, 0) for sid in todo}
                spans = self.spans
            at, got = data_figures.plans(todo, spans)
            if len(self.memo) + len(got) > MAX_KEPT:
                self.memo.clear()
            created_of = dict(sources)
            for sid, (windows, daily) in got.items():
                fig = SourceFigures(
                    windows, daily, versions[sid], at, created_of[sid], next(_serials)
                )
                self.memo[sid] = out[sid] = fig
        return out


def blank(now: float) -> SourceFigures:
    """The figures of a source deleted while the page was read: no data."""
    none: Figures = {"uptime": None, "up_s": 0.0, "down_s": 0.0, "unknown_s": 0.0}
    none["maintenance_s"] = 0.0
    windows = dict.fromkeys(WINDOWS, none)
    return SourceFigures(windows, [], -1, now, 0.0, next(_serials))


def of(app: Flask) -> Timelines:
    t: Timelines | None = app.extensions.get("healthd_timelines")
    if t is None:
        t = app.extensions.setdefault("healthd_timelines", Timelines())
    assert t is not None
    return t
