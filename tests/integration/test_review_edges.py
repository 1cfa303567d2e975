"""Adversarial review of the per-target sender, the WebSocket and the rollups, against
real processes and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg

from healthd.notify.sender import PER_TARGET, Sender
from healthd.plugins import httpclient
from healthd.store.facade import Store
from tests.fix_servers import Request, Scripted


def _deliveries(db: psycopg.Connection[Any], url: str, n: int) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', '{}')"
    )
    db.execute("INSERT INTO webhooks (url) VALUES (%s)", (url,))
    for i in range(1, n + 1):
        db.execute(
            "INSERT INTO status_history (id, source_id, from_status, to_status)"
            " VALUES (%s, 'web', 'unknown', 'connected')",
            (i,),
        )
        db.execute(
            "INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)"
            " SELECT id, %s, 'transition', '{}' FROM webhooks",
            (i,),
        )


def test_two_daemons_sharing_an_outbox_hold_at_most_per_target_in_flight(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """A receiver that takes 1.5 s per answer; two senders (two daemons) on one outbox with
    30 due deliveries of that one target: at no moment more than PER_TARGET in flight."""
    lock = threading.Lock()
    live = [0, 0]  # now, most

    def slow(_: Request) -> tuple[int, dict[str, str], bytes]:
        with lock:
            live[0] += 1
            live[1] = max(live[1], live[0])
        time.sleep(1.5)
        with lock:
            live[0] -= 1
        return 200, {}, b"ok"

    srv = Scripted(slow)
    try:
        _deliveries(db, srv.base + "/hook", 3 * PER_TARGET)

        async def go() -> tuple[int, int]:
            a, b = Store(db_url, "a"), Store(db_url, "b")
            try:
                sa, sb = Sender(a), Sender(b)
                got_a = await sa.run_once(wait=False)
                await asyncio.sleep(0.3)  # a's batch is on the wire
                got_b = await sb.run_once(wait=False)
                await asyncio.gather(*sa._batches.values(), *sb._batches.values())
                return got_a, got_b
            finally:
                await httpclient.close_session()
                await a.close()
                await b.close()

        got_a, got_b = asyncio.run(go())
        assert got_a == PER_TARGET
        assert live[1] <= PER_TARGET, (got_a, got_b, live)
        assert got_b == 0
    finally:
        srv.close()
