"""The daemon's write path under faults, with real PostgreSQL, real `healthd run`
processes and a TCP proxy that can cut or stall the database connection (tests/proxy.py).

Each test reproduces a way the table could be made to lie and checks it no
longer does: a message the database refuses, a writer connection left in an aborted
transaction, a daemon that lost its lease still writing, the history feed read out of
commit order, a watchdog fed while sources starve, a database that stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.core.debounce import Event, Observation, State
from healthd.store.codec import ResultRow
from healthd.store.facade import Store
from tests.fix_db import add_http, add_source, status, transitions
from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Scripted, Target, hanging_listener
from tests.proxy import Proxy

pytestmark = pytest.mark.slow

SHARDS = 64


def shard_of(sid: str) -> int:
    return zlib.crc32(sid.encode()) % SHARDS


def id_in_shards(prefix: str, low: int, high: int) -> str:
    """An id whose shard is in [low, high): the first daemon keeps the low half of the
    shards when a second one joins, and hands over the high half."""
    return next(f"{prefix}{i}" for i in range(10_000) if low <= shard_of(f"{prefix}{i}") < high)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    return d


@pytest.fixture
def daemons(db_url: str, tmp_path: Path, spool_dir: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(url: str | None = None, **env: str) -> DaemonProcess:
        env.setdefault("HEALTHD_SPOOL_DIR", str(spool_dir))
        d = DaemonProcess(url or db_url, tmp_path / f"daemon{len(started)}.log", **env)
        started.append(d)
        return d

    yield start
    for i, d in enumerate(started):
        if d.proc.poll() is None:
            d.stop()
        sys.stdout.write(f"--- daemon {i} log (tail) ---\n{d.log()[-4000:]}\n")  # shown on failure


@pytest.fixture
def proxy(pg_cluster: Any) -> Iterator[Proxy]:
    p = Proxy(pg_cluster.port)
    yield p
    p.close()


def holder(db: psycopg.Connection[Any], sid: str) -> str:
    row = db.execute(
        "SELECT coalesce(node_id, '') FROM shard_leases WHERE shard = %s AND expires_at > now()",
        (shard_of(sid),),
    ).fetchone()
    return row[0] if row else ""


def node_of(d: DaemonProcess) -> re.Pattern[str]:
    return re.compile(rf":{d.proc.pid}:[0-9a-f]+$")


def all_shards_held(db: psycopg.Connection[Any]) -> bool:
    row = db.execute(
        "SELECT count(*) FROM shard_leases WHERE node_id IS NOT NULL AND expires_at > now()"
    ).fetchone()
    return bool(row and row[0] == SHARDS)


def not_internal(log: str) -> None:
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]


# -- item 1: one bad message must not stop the writes ------------------------------------


def json_error_server() -> Scripted:
    """An OpenAI-style endpoint whose JSON error message holds a lone surrogate."""
    raw = b'{"error": {"message": "quota \\ud800 exceeded"}}'
    return Scripted(lambda r: (500, {"Content-Type": "application/json"}, raw))


def test_nul_and_lone_surrogate_messages_are_written_sanitised(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    ai = json_error_server()
    try:
        add_source(db, "nul", "command", {"argv": ["sh", "-c", "printf 'bad\\000byte'; exit 2"]})
        add_source(db, "ai", "ai-service", {"endpoint": ai.base + "/v1", "api_key": "k-123456"})
        add_http(db, "web", target.url)
        d = daemons()
        wait_for(
            lambda: (
                status(db, "nul") == "error"
                and status(db, "ai") == "error"
                and status(db, "web") == "connected"
            ),
            timeout=20,
            what="every source written, the bad messages included",
        )
        nul = db.execute("SELECT test_error_message FROM data_sources WHERE id='nul'").fetchone()[0]
        assert "\x00" not in nul and "bad" in nul and "byte" in nul
        msg = db.execute("SELECT test_error_message FROM data_sources WHERE id='ai'").fetchone()[0]
        assert "quota" in msg and "exceeded" in msg and "\ufffd" in msg
        hist = db.execute(
            "SELECT error_message, results::text FROM status_history WHERE source_id = 'ai'"
        ).fetchone()
        assert "\ufffd" in hist[0] and "quota" in hist[1]
        assert d.stop() == 0
        not_internal(d.log())
    finally:
        ai.close()


POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 'poison' THEN
        RAISE EXCEPTION 'row refused for this test' USING ERRCODE = '22023';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE UPDATE ON data_sources
    FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def test_a_refused_row_does_not_lose_the_batch(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    db.execute(POISON)
    add_http(db, "poison", target.url + "poison")
    for i in range(60):
        add_http(db, f"w{i}", f"{target.url}w{i}")
    d = daemons()

    def all_connected() -> bool:
        row = db.execute(
            "SELECT count(*) FROM data_sources WHERE id <> 'poison'"
            " AND connection_status = 'connected'"
        ).fetchone()
        return bool(row and row[0] == 60)

    wait_for(all_connected, timeout=20, what="all 60 other sources written as connected")
    poison_probes = lambda: sum(1 for r in list(target.requests) if r["path"] == "/poison")  # noqa: E731
    wait_for(lambda: poison_probes() >= 5, timeout=15, what="the refused source probed 5 times")
    # the others keep being written while the poison row is refused on every flush
    before = db.execute("SELECT max(last_tested_at) FROM data_sources").fetchone()[0]
    wait_for(
        lambda: db.execute("SELECT max(last_tested_at) FROM data_sources").fetchone()[0] > before,
        what="writes going on",
    )
    assert status(db, "poison") == "unknown"
    assert d.stop() == 0
    log = d.log()
    not_internal(log)
    refused = [line for line in log.splitlines() if "poison" in line and "refused" in line]
    assert len(refused) == 1, refused  # logged once, not once per flush


def test_a_write_that_did_not_land_reloads_the_state_from_the_table(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    add_http(db, "web", target.url)
    d = daemons()
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    # someone else moved the status under the daemon (a plain-SQL edit, another writer)
    db.execute("UPDATE data_sources SET connection_status = 'disconnected' WHERE id = 'web'")
    target.set("fail")
    wait_for(
        lambda: "web: connected -> error" in d.log(), timeout=15, what="the daemon's transition"
    )
    wait_for(lambda: "not written" in d.log(), timeout=10, what="the refused compare-and-swap")
    target.set("ok")
    # the daemon re-read 'disconnected' from the table, so its way back is written
    wait_for(lambda: status(db, "web") == "connected", timeout=15, what="connected again")
    assert transitions(db, "web")[-1] == ("disconnected", "connected")
    assert d.stop() == 0
    not_internal(d.log())


# -- item 2: any error on the writer connection discards it ----------------------------------


def _kill_writer(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'healthd' AND datname = current_database()"
    )


def test_read_only_database_is_survived_and_sigterm_is_clean(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    dbname = db.info.dbname
    add_http(db, "web", target.url)
    d = daemons()
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    # a failover to a read-only server: the next session cannot create its temp tables
    db.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    _kill_writer(db)
    target.set("fail")
    wait_for(lambda: target.count("fail") >= 4, timeout=15, what="failures while read-only")
    wait_for(lambda: "read-only" in d.log(), timeout=15, what="the refusal logged")
    db.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
    wait_for(lambda: status(db, "web") == "error", timeout=20, what="the transition written")
    assert transitions(db, "web") == [("unknown", "connected"), ("connected", "error")]
    # read-only again, with something to write, then SIGTERM: a clean stop
    db.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    _kill_writer(db)
    target.set("ok")
    seen = target.count("ok")
    wait_for(lambda: target.count("ok") >= seen + 2, timeout=10, what="results to write")
    assert d.stop() == 0
    not_internal(d.log())
    db.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')


# -- item 3: a daemon that lost its lease does not write ---------------------------------


def test_stale_daemon_is_fenced_after_a_partition(
    db: psycopg.Connection[Any], db_url: str, target: Target, daemons: Any, proxy: Proxy
) -> None:
    sid = id_in_shards("web", 0, 32)  # stays with B after A comes back and they rebalance
    add_http(db, sid, target.url)
    # A flips on one failure, B would need a hundred: B keeps seeing the source healthy
    a = daemons(proxy.url(db_url), HEALTHD_FALL="1", HEALTHD_RISE="1")
    wait_for(lambda: status(db, sid) == "connected" and all_shards_held(db), what="A running")
    proxy.cut()
    target.set("fail")
    wait_for(lambda: f"{sid}: connected -> error" in a.log(), what="A's transition, unwritten")
    b = daemons(HEALTHD_FALL="100")
    wait_for(
        lambda: node_of(b).search(holder(db, sid)),
        timeout=40,
        what="B taking over the expired lease",
    )
    wait_for(
        lambda: (
            db.execute("SELECT pending_count FROM data_sources WHERE id = %s", (sid,)).fetchone()[0]
            >= 1
        ),
        what="B writing its own results",
    )
    healed = time.monotonic()
    proxy.forward()
    # the reconnect backoff stays below the lease TTL (15 s): back within a few seconds
    wait_for(lambda: "database reachable again" in a.log(), timeout=10, what="A reconnecting")
    assert time.monotonic() - healed < 10
    wait_for(lambda: "stale" in a.log(), timeout=10, what="A's stale write counted")
    time.sleep(1.0)  # anything A still had would have been flushed by now (every 0.25 s)
    assert status(db, sid) == "connected"
    assert ("connected", "error") not in transitions(db, sid)
    assert node_of(b).search(holder(db, sid))
    assert a.stop() == 0 and b.stop() == 0
    not_internal(a.log())
    not_internal(b.log())


def test_released_shard_stops_being_probed_even_if_the_resync_fails(
    db: psycopg.Connection[Any], db_url: str, daemons: Any, tmp_path: Path, pg_cluster: Any
) -> None:
    role = f"ra_{db.info.dbname}"
    db.execute(f'CREATE ROLE "{role}" LOGIN')
    pg_cluster.set_password(role)  # TCP logins use the cluster's password
    db.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    db.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    probes = tmp_path / "probes"
    probes.touch(mode=0o666)
    os.chmod(probes, 0o666)
    sid = id_in_shards("cmd", 32, 64)  # handed over when a second daemon joins
    add_source(db, sid, "command", {"argv": ["sh", "-c", f"echo $PPID >> {probes}"]})

    def pids() -> list[int]:
        return [int(x) for x in probes.read_text().split()]

    try:
        a = daemons(db_url.replace("postgres@", f"{role}@"))
        wait_for(lambda: a.proc.pid in pids(), what="A probing")
        # from now on A cannot read what changed (the version columns): every resync of
        # A fails, while its writes (which read other columns) go on
        cols = [
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'data_sources'"
                " AND column_name NOT IN ('updated_at', 'config_changed_at')"
            )
        ]
        db.execute(f'REVOKE SELECT ON data_sources FROM "{role}"')
        db.execute(f'GRANT SELECT ({", ".join(cols)}) ON data_sources TO "{role}"')
        b = daemons()
        wait_for(lambda: b.proc.pid in pids(), timeout=30, what="B probing the handed-over source")
        first_b = pids().index(b.proc.pid)
        wait_for(lambda: pids()[first_b:].count(b.proc.pid) >= 4, timeout=15, what="B probing on")
        # A released the shard before B could take it: at most one probe already in flight
        assert pids()[first_b:].count(a.proc.pid) <= 1, pids()
        assert a.stop() == 0 and b.stop() == 0
    finally:
        db.execute(f'DROP OWNED BY "{role}"')
        db.execute(f'DROP ROLE "{role}"')


# -- item 4: the history feed in commit order --------------------------------------------

SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.source_id = %s AND NEW.to_status = 'error' THEN
        PERFORM pg_sleep(4);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER slow_commit AFTER INSERT ON status_history
    FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


def test_events_feed_never_skips_with_two_writers_and_a_delayed_commit(
    db: psycopg.Connection[Any], db_url: str, daemons: Any, tmp_path: Path
) -> None:
    slow_t, fast_t = Target(), Target()
    slow, fast = id_in_shards("slow", 0, 32), id_in_shards("fast", 32, 64)
    db.execute(SLOW_COMMIT.replace("%s", f"'{slow}'"))
    add_http(db, slow, slow_t.url)
    add_http(db, fast, fast_t.url)
    api = Gunicorn(db_url, tmp_path / "api.log", workers=1)
    seen: list[int] = []
    cursor = [0]
    stop = threading.Event()

    def read() -> None:
        # a client tailing /api/v1/events?after=: its cursor only moves forward
        while not stop.is_set():
            query = urllib.parse.urlencode({"after": cursor[0]})
            try:
                with urllib.request.urlopen(f"{api.base}/api/v1/events?{query}", timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                continue
            seen.extend(e["id"] for e in body["events"])
            cursor[0] = body["next_after"]
            time.sleep(0.02)

    reader = threading.Thread(target=read, daemon=True)
    try:
        a = daemons(HEALTHD_FALL="1")
        wait_for(lambda: all_shards_held(db), what="A holding every shard")
        b = daemons(HEALTHD_FALL="1")
        wait_for(
            lambda: node_of(b).search(holder(db, fast)) and node_of(a).search(holder(db, slow)),
            timeout=30,
            what="slow with A, fast with B",
        )
        wait_for(
            lambda: status(db, slow) == "connected" and status(db, fast) == "connected",
            what="both connected",
        )
        reader.start()
        slow_t.set("fail")
        # A's history row for slow is inserted and its commit held back by the trigger
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                ).fetchone()[0]
                == 1
            ),
            what="A's transaction in its delayed commit",
        )
        fast_t.set("fail")
        wait_for(
            lambda: status(db, slow) == "error" and status(db, fast) == "error",
            timeout=20,
            what="both transitions committed",
        )
        last = db.execute("SELECT max(id) FROM status_history").fetchone()[0]
        wait_for(lambda: cursor[0] >= last, what="the reader caught up")
        every = [r[0] for r in db.execute("SELECT id FROM status_history ORDER BY id")]
        assert seen == every  # nothing skipped, nothing twice, in id order
        assert a.stop() == 0 and b.stop() == 0
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(10)
        api.stop()
        slow_t.close()
        fast_t.close()


# -- item 5: the watchdog stops when sources are overdue ---------------------------------


def test_watchdog_withheld_while_sources_are_overdue(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    with hanging_listener() as port:
        for i in range(4):
            add_source(
                db,
                f"hang{i}",
                "tcp",
                {"host": "127.0.0.1", "port": port, "send": "PING\r\n", "expect": "+PONG"},
            )
        add_http(db, "web", target.url)
        path = Path(tempfile.mkdtemp()) / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        try:
            # one probe at a time, four of them hanging 2 s each, every source due each second:
            # the loop turns happily while every source falls further behind
            d = daemons(
                NOTIFY_SOCKET=str(path),
                WATCHDOG_USEC="1000000",
                HEALTHD_CONCURRENCY="1",
                HEALTHD_TIMEOUT="2",
            )
            sock.settimeout(15)
            got: list[str] = []
            while "READY=1" not in got:
                got.extend(sock.recv(4096).decode().splitlines())
            sock.settimeout(0.2)
            deadline = time.monotonic() + 30
            last_ping = time.monotonic()
            silent = False
            while time.monotonic() < deadline and not silent:
                with contextlib.suppress(TimeoutError):
                    if "WATCHDOG=1" in sock.recv(4096).decode().splitlines():
                        last_ping = time.monotonic()
                # STATUS= lines go on; six ping periods without WATCHDOG=1 is a withheld ping
                silent = time.monotonic() - last_ping > 3.0
            assert silent, "WATCHDOG=1 kept coming while sources were overdue"
            assert d.proc.poll() is None
            assert "overdue" in d.log()
            assert d.stop() == 0
        finally:
            sock.close()
            os.unlink(path)


# -- item 6: a database that stops answering --------------------------------------------


def test_a_stalled_connection_is_abandoned_and_the_writes_land(
    db: psycopg.Connection[Any], db_url: str, target: Target, daemons: Any, proxy: Proxy
) -> None:
    add_http(db, "web", target.url)
    d = daemons(proxy.url(db_url), HEALTHD_DB_TIMEOUT="3")
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    # the open connections go silent (no RST, no FIN); a new connection would work
    proxy.stall(new=False)
    target.set("fail")
    wait_for(lambda: status(db, "web") == "error", timeout=30, what="the transition written")
    assert transitions(db, "web") == [("unknown", "connected"), ("connected", "error")]
    assert d.stop(timeout=30) == 0
    not_internal(d.log())


def test_sigterm_during_a_stall_is_bounded_and_the_transition_is_spooled(
    db: psycopg.Connection[Any],
    db_url: str,
    target: Target,
    daemons: Any,
    proxy: Proxy,
    spool_dir: Path,
) -> None:
    add_http(db, "web", target.url)
    a = daemons(proxy.url(db_url), HEALTHD_DB_TIMEOUT="3")
    wait_for(lambda: status(db, "web") == "connected", what="connected")
    proxy.stall()  # everything goes silent, new connections too
    target.set("fail")
    wait_for(lambda: "web: connected -> error" in a.log(), what="the transition, unwritten")
    stopping = time.monotonic()
    assert a.stop(timeout=25) == 0
    assert time.monotonic() - stopping < 20  # within the unit's TimeoutStopSec
    log = a.log()
    not_internal(log)
    assert "spool" in log
    assert list(spool_dir.iterdir())
    assert status(db, "web") == "connected"
    # the next start writes the spool first (this daemon could not find the error itself
    # in time: it needs a hundred failures)
    b = daemons(HEALTHD_FALL="100", HEALTHD_DB_TIMEOUT="3")
    wait_for(lambda: status(db, "web") == "error", timeout=30, what="the spooled transition")
    assert transitions(db, "web") == [("unknown", "connected"), ("connected", "error")]
    wait_for(lambda: not list(spool_dir.iterdir()), what="the spool removed once written")
    assert b.stop() == 0
    not_internal(b.log())


# -- the write path itself, past the plugin guard --------------------------------------


def test_store_writes_a_batch_around_rows_the_database_refuses(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Rows that never went through the guard (a NUL, a lone surrogate the encoder
    refuses before the server sees it) cost only their own message, not the batch."""
    for sid in ("nul", "sur", "good"):
        add_http(db, sid, "http://127.0.0.1:9/")

    async def go() -> list[str]:
        store = Store(db_url, "n")
        for sid, msg in (("nul", "a\x00b"), ("sur", "a\ud800b"), ("good", "fine")):
            obs = Observation("error", msg, 1_700_000_000.0)
            store.add_result(ResultRow(sid, obs, 1.0, State("unknown"), False))
            store.add_event(sid, Event("transition", "unknown", "error", msg, obs.at, (obs,)))
        await store.flush()
        assert store.backlog() == (0, 0)
        reload = store.take_reload()
        await store.close()
        return reload

    assert asyncio.run(go()) == ["nul", "sur"]
    rows = dict(db.execute("SELECT id, test_error_message FROM data_sources").fetchall())
    assert rows["good"] == "fine"
    assert "refused" in rows["nul"] and "refused" in rows["sur"]
    assert {r[0] for r in db.execute("SELECT source_id FROM status_history")} == {
        "nul",
        "sur",
        "good",
    }


def test_store_waits_out_a_revoked_temp_privilege(
    db: psycopg.Connection[Any], db_url: str, pg_cluster: Any
) -> None:
    """CREATE TEMP TABLE refused: the batch stays buffered (no connection is kept in an
    aborted transaction) and lands once the privilege is back."""
    dbname, role = db.info.dbname, f"rt_{db.info.dbname}"
    add_http(db, "web", "http://127.0.0.1:9/")
    db.execute(f'CREATE ROLE "{role}" LOGIN')
    pg_cluster.set_password(role)
    db.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    db.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    db.execute(f'REVOKE TEMPORARY ON DATABASE "{dbname}" FROM PUBLIC')

    async def go() -> None:
        store = Store(db_url.replace("postgres@", f"{role}@"), "n")
        obs = Observation("error", "HTTP 500", 1_700_000_000.0)
        store.add_result(ResultRow("web", obs, 1.0, State("unknown"), False))
        store.add_event("web", Event("transition", "unknown", "error", "HTTP 500", obs.at, (obs,)))
        assert await store.flush() == []
        assert store.backlog() == (1, 1)  # kept, not dropped
        db.execute(f'GRANT TEMPORARY ON DATABASE "{dbname}" TO PUBLIC')
        deadline = time.monotonic() + 10
        while store.backlog() != (0, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            await store.flush()
        await store.close()

    try:
        asyncio.run(go())
        assert status(db, "web") == "error"
        assert transitions(db, "web") == [("unknown", "error")]
    finally:
        db.execute(f'GRANT TEMPORARY ON DATABASE "{dbname}" TO PUBLIC')
        db.execute(f'DROP OWNED BY "{role}"')
        db.execute(f'DROP ROLE "{role}"')
