"""The daemon's first step: wait until the database's schema is the one this healthd knows.

A database never migrated, some migrations behind, or migrated by a newer healthd is one
line naming `healthd migrate` (healthd/core/schema.py words it), then silence: the schema
is looked at again every few seconds and the next line comes only when the reason
changes, or once the schema is known and the daemon starts. No job runs before that, so
nothing fails once a second against tables that are not there.

Waiting, not exiting: deploy/healthd.service runs `healthd migrate` before every start
(ExecStartPre) and restarts on failure, so a daemon that got here past a failed or
skipped migration, or on a schema another host's newer healthd moved on, would only
restart into the same state every few seconds. Waiting, it tells systemd it is up
(READY=1, so `systemctl start` does not hang on it) with STATUS= saying what it waits
for, keeps the watchdog fed, and starts by itself once someone runs `healthd migrate`.
/readyz answers 503 with the same reason meanwhile (statusapi/api/meta.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from healthd.core.errors import DatabaseError
from healthd.daemon.sdnotify import Notifier
from healthd.store import migrate

log = logging.getLogger("healthd")

CHECK_EVERY = 5.0  # seconds between two looks at the schema while waiting


class SchemaGate:
    def __init__(self, url: str, notifier: Notifier, timeout: float, ready: bool = True) -> None:
        self.url = url
        self.notifier = notifier
        self.timeout = timeout
        self.ready = ready  # say READY=1 while waiting (not a supervised worker's to say)
        self.said = ""
        self.every = min(CHECK_EVERY, notifier.watchdog_interval)

    def look(self) -> bool:
        """One look; True when the schema is known. A new reason to wait is logged once."""
        try:
            problem = migrate.state(self.url, self.timeout, details=False).problem
        except DatabaseError as exc:
            problem = str(exc)
        if not problem:
            if self.said:
                log.info("database schema is the one this healthd knows: starting")
            return True
        if problem != self.said:
            self.said = problem
            log.error("%s; waiting for it (checking every %.0f s)", problem, CHECK_EVERY)
            lines = [f"STATUS=waiting: {problem}"]
            self.notifier.send(*(["READY=1", *lines] if self.ready else lines))
        self.notifier.send("WATCHDOG=1")
        return False

    async def wait(self, stopping: asyncio.Event) -> bool:
        """Until the schema is known (True) or ``stopping`` is set (False)."""
        while not await asyncio.to_thread(self.look):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.every)
            if stopping.is_set():
                return False
        return True

    def wait_sync(self, stopping: Callable[[], bool]) -> bool:
        """`wait` for a caller without an event loop (the supervisor)."""
        while not self.look():
            deadline = time.monotonic() + self.every
            while time.monotonic() < deadline:
                if stopping():
                    return False
                time.sleep(0.1)
        return True
