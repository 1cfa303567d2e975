"""The lease keeper: renews this daemon's shard leases from a thread and a connection of
its own, so that an overloaded daemon keeps the shards it holds (and keeps probing them,
late) instead of losing them whenever its event loop runs a lease TTL behind.

The event loop's lease round (healthd/daemon/sourcesync.py) still takes, hands back and
rebalances; the keeper only renews what is held, and only while the event loop has turned
within ``turned_within`` seconds and a write of the daemon's own has landed within as long
(``may_renew``): an overloaded loop turns late, a hung one does not turn at all, and a hung
daemon, or one that cannot write, must still lose its shards. A stopped process
(SIGSTOP, a frozen VM) stops this thread too, so its leases expire as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from healthd.store import leases

log = logging.getLogger("healthd.store")

RETRY_SKIPPED = 0.05  # a flush holding a lease row commits within a moment
RETRIES = 20


def may_renew(
    now: float, loop_turned_at: float, turned_within: float, wrote_at: float | None = None
) -> bool:
    """Renew only while the event loop has turned recently: late is overloaded (keep the
    shards), silent for longer than ``turned_within`` is hung (let them go). Likewise the
    writer: a daemon none of whose database writes has landed for that long (stuck or
    refused) lets its shards go, as it did before the keeper, so another daemon can try."""
    if now - loop_turned_at > turned_within:
        return False
    return wrote_at is None or now - wrote_at <= turned_within


class LeaseKeeper:
    def __init__(
        self,
        url: str,
        node_id: str,
        ttl: float,
        every: float,
        turned_within: float,
        loop_turned_at: Callable[[], float],
        connect_kwargs: dict[str, Any],
        session_sql: tuple[str, ...] = (),
        wrote_at: Callable[[], float] | None = None,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.ttl = ttl
        self.every = every
        self.turned_within = turned_within
        self.loop_turned_at = loop_turned_at
        self.wrote_at = wrote_at  # when a write of the daemon's writer last landed
        self.connect_kwargs = connect_kwargs
        self.session_sql = session_sql
        self.renewals = 0  # rounds that renewed (for tests and the curious)
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._withheld = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="healthd-leases", daemon=True)
        self._thread.start()

    def stop(self, deadline: float = 2.0) -> None:
        """Stop renewing (before this daemon hands its shards back at stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(deadline)
            if self._thread.is_alive():
                return  # stuck on the database: the connection dies with the process
        self._discard()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.renew_once()

    def renew_once(self) -> list[int] | None:
        """One round: the shards renewed, or None when nothing was renewed (the loop is
        hung, or the database is unreachable: the writer logs that)."""
        now, turned = time.monotonic(), self.loop_turned_at()
        wrote = self.wrote_at() if self.wrote_at is not None else None
        if not may_renew(now, turned, self.turned_within, wrote):
            if not self._withheld:
                self._withheld = True
                what = (
                    f"the event loop has not turned for {now - turned:.0f} s"
                    if now - turned > self.turned_within
                    else f"no database write has landed for {now - (wrote or now):.0f} s"
                )
                log.error(
                    "%s: no longer renewing this daemon's shard leases, so other daemons"
                    " take its sources over",
                    what,
                )
            return None
        if self._withheld:
            self._withheld = False
            log.warning("renewing shard leases again")
        try:
            conn = self._connection()
            renewed, skipped = leases.renew(conn, self.node_id, self.ttl)
            for _ in range(RETRIES):
                if not skipped or self._stop.is_set():
                    break
                time.sleep(RETRY_SKIPPED)
                more, skipped = leases.renew(conn, self.node_id, self.ttl, skipped)
                renewed += more
        except psycopg.Error as exc:
            log.debug("renewing leases failed: %s", exc)
            self._discard()
            return None
        self.renewals += 1
        return sorted(renewed)

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        conn = psycopg.connect(self.url, autocommit=True, **self.connect_kwargs)
        self._conn = conn
        for sql in self.session_sql:
            conn.execute(sql)
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
