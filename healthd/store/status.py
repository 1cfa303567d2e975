"""The status and transition SQL: one batch of results and events in one transaction.

Results go by binary COPY into a session temp table and one UPDATE; transitions go in
the same transaction, each as a compare-and-swap on ``connection_status`` plus its
history row and webhook outbox rows, so two writers cannot both win and a committed
transition is never left without its history.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from healthd import rollups
from healthd.debounce import Event
from healthd.store.codec import ResultRow, obs_json, ts
from healthd.words import CONNECTED, FAILED, SUCCESS, TRANSITION

log = logging.getLogger("healthd.store")

ANALYZE_OVER = 200  # batches larger than this get planner statistics before the join

# A batch goes to a session temp table by binary COPY (psycopg's C dumpers; text
# parameters for a dozen 10,000-element arrays cost more than the UPDATE itself), then one
# UPDATE joins it by primary key (nested loops forced: the temp table has no statistics,
# and a hash join would scan all of data_sources for every batch).
RESULTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_results (
    id text, at timestamptz, ts text, msg text, lat real, pst text, pc int, streak jsonb,
    rec text, flap bool, pct real, rc int
) ON COMMIT DELETE ROWS
"""
_RESULTS_TYPES = [
    "text",
    "timestamptz",
    "text",
    "text",
    "float4",
    "text",
    "int4",
    "jsonb",
    "text",
    "bool",
    "float4",
    "int4",
]
# The latency rollups (migration 0008) ride in the same statement: per source per minute,
# probes, failures, the slowest success and a fixed histogram of successes' latencies
# (healthd.rollups), added to with a subscripted update of the one bucket a result falls
# in. A batch holds one result per source, so no row is hit twice.
_B = rollups.sql_bounds()
_SLOT = f"coalesce(width_bucket(excluded.max_ms, {_B}), 0) + 1"
_RESULTS_SQL = f"""
WITH roll AS (
    INSERT INTO latency_rollups AS l (source_id, bucket, count, failures, max_ms, hist)
    SELECT r.id, date_bin('{rollups.BUCKET_S} seconds', r.at, 'epoch'), 1,
        (r.ts = '{FAILED}')::int, CASE WHEN r.ts = '{SUCCESS}' THEN r.lat END,
        CASE WHEN r.ts = '{SUCCESS}' AND r.lat IS NOT NULL
            THEN array_fill(0, ARRAY[width_bucket(r.lat, {_B})]) || 1
                || array_fill(0, ARRAY[{rollups.SLOTS - 1} - width_bucket(r.lat, {_B})])
            ELSE array_fill(0, ARRAY[{rollups.SLOTS}]) END
    FROM healthd_results r
    ON CONFLICT (source_id, bucket) DO UPDATE SET
        count = l.count + 1, failures = l.failures + excluded.failures,
        max_ms = greatest(l.max_ms, excluded.max_ms),
        hist[{_SLOT}] = l.hist[{_SLOT}] + (excluded.max_ms IS NOT NULL)::int
)
UPDATE data_sources d SET
    last_tested_at = r.at, test_status = r.ts, test_error_message = r.msg,
    latency_ms = r.lat, pending_status = r.pst, pending_count = r.pc, pending_results = r.streak,
    recent_results = r.rec, flapping = r.flap, percent_state_change = r.pct,
    reconnect_count = d.reconnect_count + r.rc, updated_at = now()
FROM healthd_results r WHERE d.id = r.id
"""

# Events go the same way: binary COPY into a temp table, then one statement that applies
# every transition as a compare-and-swap (WHERE connection_status = from), writes a history
# row for each one that won and for each flapping event, and the webhook outbox rows for
# those. A source appears at most once per kind in one pass (see waves).
EVENTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_events (
    seq int, id text, event text, from_status text, to_status text, at timestamptz, msg text,
    results jsonb
) ON COMMIT DELETE ROWS
"""
_EVENTS_TYPES = ["int4", "text", "text", "text", "text", "timestamptz", "text", "jsonb"]
_EVENTS_SQL = """
WITH upd AS (
    UPDATE data_sources d SET connection_status = e.to_status, status_changed_at = e.at,
        updated_at = now()
    FROM healthd_events e
    WHERE e.event = %(transition)s AND d.id = e.id AND d.connection_status = e.from_status
    RETURNING d.id, d.name, d.depends_on
), won AS (
    SELECT e.*, coalesce(u.name, s.name) AS name, coalesce(u.depends_on, s.depends_on) AS parents
    FROM healthd_events e
    LEFT JOIN upd u ON e.event = %(transition)s AND u.id = e.id
    LEFT JOIN data_sources s ON e.event <> %(transition)s AND s.id = e.id
    WHERE u.id IS NOT NULL OR s.id IS NOT NULL
), maint AS (
    -- inside a maintenance window at the event's time (set-based: windows are few, events
    -- many; the source filter runs before the window's occurrence is computed)
    SELECT DISTINCT won.id, won.event FROM won
    JOIN maintenance_windows w ON w.source_ids IS NULL OR won.id = ANY (w.source_ids)
    WHERE healthd_window_occurrence(w, won.at) @> won.at
), pairs AS MATERIALIZED (
    SELECT c.id, unnest(c.parents) AS pid FROM won c
    WHERE c.event = %(transition)s AND c.to_status IN ('disconnected', 'error')
      AND cardinality(c.parents) > 0
), down AS (
    -- a failing child's parents that are not connected: the status this wave gives a
    -- parent, else its row's (the statement sees the rows as they were before it)
    SELECT pr.id, array_agg(pr.pid ORDER BY pr.pid) AS parents
    FROM pairs pr JOIN data_sources p ON p.id = pr.pid
    LEFT JOIN healthd_events pe ON pe.event = %(transition)s AND pe.id = pr.pid
    WHERE coalesce(pe.to_status, p.connection_status) <> 'connected'
    GROUP BY pr.id
), marked AS (
    -- recorded either way; marked so that no webhook goes out (README: Maintenance windows)
    SELECT won.*, mt.id IS NOT NULL AS maintenance, d.parents AS suppressed_by
    FROM won
    LEFT JOIN maint mt ON mt.id = won.id AND mt.event = won.event
    LEFT JOIN down d ON won.event = %(transition)s AND d.id = won.id
), h AS (
    INSERT INTO status_history
        (source_id, event, from_status, to_status, at, error_message, results, maintenance,
        suppressed_by)
    SELECT id, event, from_status, to_status, at, msg, results, maintenance, suppressed_by
    FROM marked ORDER BY seq
    RETURNING id, source_id, event, at
), o AS (
    INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)
    SELECT w.id, h.id, h.event, jsonb_build_object(
        'id', h.id, 'event', h.event, 'source_id', h.source_id, 'source_name', m.name,
        'from', m.from_status, 'to', m.to_status, 'at', h.at, 'message', m.msg)
    FROM h JOIN marked m ON m.id = h.source_id AND m.event = h.event
    CROSS JOIN webhooks w WHERE w.enabled AND h.event = ANY (w.events)
        AND NOT m.maintenance AND m.suppressed_by IS NULL
        AND (w.source_ids IS NULL OR h.source_id = ANY (w.source_ids))
        AND (w.to_statuses IS NULL OR h.event <> %(transition)s
            OR m.to_status = ANY (w.to_statuses))
)
SELECT id, source_id, event FROM h
"""
SETUP = (RESULTS_TEMP, EVENTS_TEMP)


def waves(events: list[tuple[str, Event]]) -> list[list[tuple[str, Event]]]:
    """Split events, in order, so no wave holds two events of one kind for one source
    (an outage can buffer unknown->connected and connected->error for the same source)."""
    out: list[list[tuple[str, Event]]] = [[]]
    seen: set[tuple[str, str]] = set()
    for sid, ev in events:
        key = (sid, ev.kind)
        if key in seen:
            out.append([])
            seen = set()
        seen.add(key)
        out[-1].append((sid, ev))
    return out


def write_batch(
    conn: psycopg.Connection[Any], results: list[ResultRow], events: list[tuple[str, Event]]
) -> tuple[list[int], int]:
    """Write results and events in one transaction and wake the API's listeners; return
    (the new history ids, how many events lost their compare-and-swap)."""
    with conn.transaction():
        write_results(conn, results)
        ids, conflicts = write_events(conn, events)
        if ids:
            conn.execute("SELECT pg_notify('healthd_events', %s)", (str(max(ids)),))
    return ids, conflicts


def write_results(conn: psycopg.Connection[Any], rows: list[ResultRow]) -> None:
    if not rows:
        return
    with conn.cursor().copy("COPY healthd_results FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_RESULTS_TYPES)
        for r in rows:
            st, ok = r.state, r.obs.status == CONNECTED
            copy.write_row(
                (
                    r.source_id,
                    ts(r.obs.at),
                    SUCCESS if ok else FAILED,
                    None if ok else (r.obs.message or None),
                    r.latency_ms,
                    st.pending,
                    st.count,
                    Jsonb([obs_json(o) for o in st.streak]),
                    st.recent,
                    st.flapping,
                    st.percent,
                    1 if r.reconnected else 0,
                )
            )
    # the temp table has no statistics: left alone, the planner hash-joins and scans
    # all of data_sources; by primary key is right for any batch size
    conn.execute("SET LOCAL enable_hashjoin = off")
    conn.execute("SET LOCAL enable_mergejoin = off")
    conn.execute(_RESULTS_SQL)
    conn.execute("SET LOCAL enable_hashjoin = on")
    conn.execute("SET LOCAL enable_mergejoin = on")


def write_events(
    conn: psycopg.Connection[Any], events: list[tuple[str, Event]]
) -> tuple[list[int], int]:
    ids: list[int] = []
    conflicts = 0
    for wave in waves(events) if events else []:
        conn.execute("DELETE FROM healthd_events")
        with conn.cursor().copy("COPY healthd_events FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_EVENTS_TYPES)
            for seq, (sid, ev) in enumerate(wave):
                copy.write_row(
                    (
                        seq,
                        sid,
                        ev.kind,
                        ev.from_status,
                        ev.to_status,
                        ts(ev.at),
                        ev.message or None,
                        Jsonb([obs_json(o) for o in ev.results]),
                    )
                )
        if len(wave) > ANALYZE_OVER:
            conn.execute("ANALYZE healthd_events")
        rows = conn.execute(_EVENTS_SQL, {"transition": TRANSITION}).fetchall()
        ids.extend(int(r["id"]) for r in rows)
        conflicts += report_conflicts(wave, {(r["source_id"], r["event"]) for r in rows})
    return ids, conflicts


def report_conflicts(wave: list[tuple[str, Event]], written: set[tuple[str, str]]) -> int:
    conflicts = 0
    for sid, ev in wave:
        if (sid, ev.kind) not in written:
            # the row changed under us (removed, or another writer moved its status):
            # the compare-and-swap refused; the next resync reloads its state
            conflicts += 1
            log.warning(
                "source %s: %s %s -> %s not written (status changed elsewhere or source removed)",
                sid,
                ev.kind,
                ev.from_status,
                ev.to_status,
            )
    return conflicts
