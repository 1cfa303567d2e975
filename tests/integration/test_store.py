"""The daemon's write path against a real PostgreSQL: what is written reads back as the
same debounce state, transitions are compare-and-swap, an outage loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from healthd.core.debounce import Event, Observation, State
from healthd.store.codec import ResultRow, state_from_row
from healthd.store.facade import Store


def _insert(db: psycopg.Connection[Any], *ids: str) -> None:
    for sid in ids:
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', '{}')",
            (sid, sid),
        )


def test_state_round_trip(db: psycopg.Connection[Any], db_url: str) -> None:
    _insert(db, "a", "b")
    streak = (
        Observation("error", "HTTP 500", 1_700_000_000.25),
        Observation("disconnected", "refused\ttab", 1_700_000_001.5),
    )
    st = State(
        status="unknown",
        pending="disconnected",
        count=2,
        streak=streak,
        recent="cced",
        flapping=True,
        percent=31.5,
    )

    async def go() -> None:
        store = Store(db_url, "n")
        store.add_result(ResultRow("a", streak[-1], 12.5, st, True))
        store.add_result(
            ResultRow(
                "b",
                Observation("connected", "ok", 1_700_000_002.0),
                1.0,
                State(status="unknown"),
                False,
            )
        )
        assert await store.flush() == []
        await store.close()

    asyncio.run(go())
    row = db.execute("SELECT * FROM data_sources WHERE id = 'a'").fetchone()
    cols = [d.name for d in db.execute("SELECT * FROM data_sources LIMIT 0").description]
    got = state_from_row(dict(zip(cols, row, strict=True)))
    assert got == st
    a = db.execute(
        "SELECT test_status, test_error_message, latency_ms, reconnect_count FROM data_sources"
        " WHERE id='a'"
    ).fetchone()
    assert a == ("failed", "refused\ttab", 12.5, 1)
    assert db.execute(
        "SELECT test_status, test_error_message FROM data_sources WHERE id='b'"
    ).fetchone() == ("success", "ok")


def test_transition_is_compare_and_swap(db: psycopg.Connection[Any], db_url: str) -> None:
    _insert(db, "a")
    db.execute("INSERT INTO webhooks (url) VALUES ('http://127.0.0.1:9/hook')")

    async def go(ev: Event) -> list[int]:
        store = Store(db_url, "n")
        store.add_event("a", ev)
        ids = await store.flush()
        await store.close()
        return ids

    ok = asyncio.run(go(Event("transition", "unknown", "error", "HTTP 500", 1_700_000_000.0, ())))
    assert len(ok) == 1
    # a second writer that still believes the status is unknown loses, and writes no history
    lost = asyncio.run(go(Event("transition", "unknown", "connected", "", 1_700_000_001.0, ())))
    assert lost == []
    assert db.execute("SELECT connection_status FROM data_sources").fetchone() == ("error",)
    assert db.execute("SELECT count(*) FROM status_history").fetchone() == (1,)
    outbox = db.execute("SELECT history_id, event, payload->>'to' FROM webhook_outbox").fetchall()
    assert outbox == [(ok[0], "transition", "error")]


def test_outage_keeps_buffers_until_flushed(db: psycopg.Connection[Any], pg_cluster: Any) -> None:
    _insert(db, "a")
    dead = pg_cluster.url("postgres").replace(str(pg_cluster.port), "1")

    async def go() -> Store:
        store = Store(dead, "n")
        store.add_result(
            ResultRow("a", Observation("error", "x", 1.0), None, State(status="error"), False)
        )
        store.add_event("a", Event("transition", "unknown", "error", "x", 1.0, ()))
        assert await store.flush() == []
        assert store.down_since is not None and len(store.results) == 1 and len(store.events) == 1
        return store

    store = asyncio.run(go())
    assert db.execute("SELECT connection_status FROM data_sources").fetchone() == ("unknown",)
    assert list(store.events)[0][1].to_status == "error"
