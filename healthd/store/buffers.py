"""What the daemon has not written yet: the newest result per source and every event, in
order. Pure (no I/O), owned by the event loop's thread; the writer takes whole batches.

Through an outage the results stay one per source (a newer one replaces the older, but a
reconnection the older one reported is still counted) and the events are bounded: past
``max_events`` the oldest are dropped, and that is logged once per outage.
"""

from __future__ import annotations

import logging
from collections import deque

from healthd.core.debounce import Event
from healthd.store.codec import Pending, ResultRow

log = logging.getLogger("healthd.store")

MAX_EVENTS = 200_000  # events kept through an outage; past this the oldest are dropped (logged)

Events = list[Pending]


def carry(newer: ResultRow, older: ResultRow | None) -> ResultRow:
    """The newer result replaces the older one, but a reconnection the older one reported
    is still counted."""
    if older is not None and older.reconnected:
        newer.reconnected = True
    return newer


class Buffers:
    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self.results: dict[str, ResultRow] = {}
        self.events: deque[Pending] = deque()
        self.dropped_events = 0

    def __bool__(self) -> bool:
        return bool(self.results or self.events)

    def add_result(self, row: ResultRow) -> None:
        self.results[row.source_id] = carry(row, self.results.get(row.source_id))

    def add_event(self, source_id: str, event: Event, gen: int | None = None) -> None:
        self.events.append(Pending(source_id, event, gen))
        self.trim()

    def trim(self) -> None:
        while len(self.events) > self.max_events:
            self.events.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1:
                log.error(
                    "event buffer full (%d): dropping the oldest events until the database is back",
                    self.max_events,
                )

    def take(self) -> tuple[dict[str, ResultRow], Events]:
        """Everything buffered, as one batch; the buffers start empty."""
        results, self.results = self.results, {}
        events = list(self.events)
        self.events.clear()
        return results, events

    def restore(self, results: dict[str, ResultRow], events: Events) -> None:
        """Put an unwritten batch back under whatever was buffered since (which is newer)."""
        for sid, row in results.items():
            newer = self.results.get(sid)
            self.results[sid] = row if newer is None else carry(newer, row)
        self.events.extendleft(reversed(events))
        self.trim()
