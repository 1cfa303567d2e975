"""Every SQL statement the API runs. All reads; nothing here needs a primary."""

from __future__ import annotations

from typing import Any

from healthd.core import fields
from healthd.core.phases import NAMES as PHASES
from healthd.core.words import CONNECTED, DOWN, STATUSES, UNKNOWN, sql_list
from healthd.store import deliverylog, parents
from statusapi.data.db import fetch_all, fetch_one, fetch_one_binary

# what the original /api/ai/* routes need of their source
AI_COLUMNS = (
    "id, config, enabled, connection_status, test_status, last_tested_at, test_error_message"
)
EVENT_COLUMNS = (
    "id, source_id, event, from_status, to_status, at, error_message, results, maintenance,"
    " suppressed_by"
)


# What the API computes for the Source fields healthd/core/fields.py marks computed:
# the parents that silence it now (enabled and not connected: healthd/store/parents.py;
# skipped for the many sources without parents), and whether a maintenance window is open,
# read once per query (uncorrelated subqueries are InitPlans; per row it doubled the cost
# of a 100-source page).
COMPUTED: dict[str, str] = {
    "unreachable_via": "CASE WHEN cardinality(depends_on) = 0 THEN '{}'::varchar[] ELSE ARRAY("
    " SELECT p.id FROM data_sources p WHERE p.id = ANY (data_sources.depends_on)"
    f" AND {parents.silences('p')} ORDER BY p.id) END",
    "in_maintenance": "(SELECT coalesce(bool_or(w.source_ids IS NULL), false)"
    " FROM maintenance_windows w WHERE healthd_window_occurrence(w, now()) @> now())"
    " OR id = ANY (ARRAY(SELECT s FROM maintenance_windows w, unnest(w.source_ids) AS s"
    " WHERE healthd_window_occurrence(w, now()) @> now()))",
}

# how many agreeing results the pending change needs: the source's own rise or fall, else the
# daemon's default (HEALTHD_RISE / HEALTHD_FALL, passed as parameters)
NEEDED = (
    "CASE WHEN pending_status = %(connected)s"
    " THEN coalesce(rise, %(rise)s) ELSE coalesce(fall, %(fall)s) END"
)


def _expr(name: str, secret_as: str) -> str:
    """A field's SELECT expression: computed ones are the query's, secret-bearing ones are
    read as text (their redaction is cached per distinct text, statusapi/data/shapes.py)."""
    if fields.BY_NAME[name].computed:
        return f"{COMPUTED[name]} AS {name}"
    if fields.BY_NAME[name].secret:
        return f"{name}::text AS {secret_as.format(name)}"
    return name


# The Source shape's columns (healthd/core/fields.py) and what its computed "pending" object
# is made of. Rows come back as tuples and are rendered in Python: PostgreSQL's
# json_build_object/to_char cost more server time per row than psycopg's parsing of the
# plain columns (P6 in tests/bench/README.md). shapes.source reads them by name through
# SOURCE_INDEX.
_SOURCE_EXPRS: dict[str, str] = {
    **{n: _expr(n, "{}") for n in fields.API_PLAIN},
    **{n: _expr(n, "{}") for n in fields.API_SECRET},
    "pending_status": "pending_status",
    "pending_count": "pending_count",
    "pending_needed": NEEDED,
}
SOURCE_INDEX: dict[str, int] = {n: i for i, n in enumerate(_SOURCE_EXPRS)}
SOURCE_SELECT = f"SELECT {', '.join(_SOURCE_EXPRS.values())} FROM data_sources"


def list_source_rows(
    status: list[str] | None,
    plugin: str | None,
    enabled: bool | None,
    after_id: str | None,
    limit: int,
    rise: int,
    fall: int,
) -> list[tuple[Any, ...]]:
    where = []
    params: dict[str, Any] = {
        "rise": rise,
        "fall": fall,
        "connected": CONNECTED,
        "limit": limit,
        "status": status,
        "plugin": plugin,
        "enabled": enabled,
        "after": after_id,
    }
    if status:
        where.append("connection_status = ANY(%(status)s)")
    if plugin:
        where.append("plugin = %(plugin)s")
    if enabled is not None:
        where.append("enabled = %(enabled)s")
    if after_id is not None:
        where.append("id > %(after)s")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return fetch_all(f"{SOURCE_SELECT} {clause} ORDER BY id LIMIT %(limit)s", params, tuples=True)


def get_source_row(source_id: str, rise: int, fall: int) -> tuple[Any, ...] | None:
    return fetch_one(
        f"{SOURCE_SELECT} WHERE id = %(id)s",
        {"id": source_id, "rise": rise, "fall": fall, "connected": CONNECTED},
        tuples=True,
    )


def get_ai_source(source_id: str) -> dict[str, Any] | None:
    return fetch_one(f"SELECT {AI_COLUMNS} FROM data_sources WHERE id = %s", (source_id,))


def source_exists(source_id: str) -> bool:
    return fetch_one("SELECT 1 AS one FROM data_sources WHERE id = %s", (source_id,)) is not None


def source_events(source_id: str, limit: int, before_id: int | None) -> list[dict[str, Any]]:
    if before_id is None:
        return fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM status_history WHERE source_id = %s"
            " ORDER BY id DESC LIMIT %s",
            (source_id, limit),
        )
    return fetch_all(
        f"SELECT {EVENT_COLUMNS} FROM status_history WHERE source_id = %s AND id < %s"
        " ORDER BY id DESC LIMIT %s",
        (source_id, before_id, limit),
    )


def events_after(after_id: int, limit: int) -> list[dict[str, Any]]:
    return fetch_all(
        f"SELECT {EVENT_COLUMNS} FROM status_history WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    )


def last_event_id() -> int:
    row = fetch_one("SELECT coalesce(max(id), 0) AS id FROM status_history")
    return int(row["id"]) if row else 0


_SUMMARY = (
    "SELECT count(*) AS total, count(*) FILTER (WHERE enabled) AS enabled,"
    + "".join(
        f" count(*) FILTER (WHERE connection_status = {sql_list((w,))}) AS {w}," for w in STATUSES
    )
    + " count(*) FILTER (WHERE flapping) AS flapping, now() AS generated_at FROM data_sources"
)


def summary() -> dict[str, Any]:
    row = fetch_one(_SUMMARY)
    assert row is not None
    return row


def daemon_freshness() -> dict[str, Any]:
    row = fetch_one(
        "SELECT count(*) AS nodes, max(heartbeat_at) AS last_heartbeat_at,"
        " extract(epoch FROM now() - max(heartbeat_at))::float8 AS age_s FROM daemon_nodes"
    )
    assert row is not None
    return row


def daemon_metrics(live_within: float) -> list[dict[str, Any]]:
    return fetch_all(
        "SELECT node_id, metrics FROM daemon_nodes WHERE metrics IS NOT NULL"
        " AND heartbeat_at > now() - make_interval(secs => %s) ORDER BY node_id",
        (live_within,),
    )


def deliveries_pending() -> int:
    row = fetch_one(
        "SELECT count(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
    )
    return int(row["n"]) if row else 0


def status_by_plugin() -> list[dict[str, Any]]:
    return fetch_all(
        "SELECT plugin, connection_status, enabled, count(*) AS n,"
        " count(*) FILTER (WHERE flapping) AS flapping"
        " FROM data_sources GROUP BY plugin, connection_status, enabled"
    )


def source_gauges(limit: int, rise: int, fall: int) -> list[tuple[Any, ...]]:
    """What /metrics shows of each enabled source, the first ``limit`` by id: (id, plugin,
    type, connection_status, flapping, pending_count, pending_needed, seconds since the
    last probe or None, latency_ms or None)."""
    return fetch_all(
        "SELECT id, plugin, type, connection_status, flapping, pending_count,"
        f" {NEEDED},"
        " extract(epoch FROM now() - last_tested_at)::float8, latency_ms"
        " FROM data_sources WHERE enabled ORDER BY id LIMIT %(limit)s",
        {"limit": limit, "rise": rise, "fall": fall, "connected": CONNECTED},
        tuples=True,
    )


def schema_migrations() -> list[dict[str, Any]] | None:
    """The rows of healthd's ``schema_migrations``; None when there is no such table, and
    an empty list when the table of that name is another tool's (its columns are not
    healthd's: healthd/store/migrate.py)."""
    row = fetch_one(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS present,"
        " (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations')"
        " AND attname IN ('version', 'name', 'applied_at') AND NOT attisdropped) AS ours"
    )
    if not row or not row["present"]:
        return None
    if row["ours"] < 3:
        return []
    return fetch_all("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")


def ping() -> None:
    fetch_one("SELECT 1 AS one")


# -- the status page, uptime, latency (docs/status-page.md) ----------------------------

# What a row of the status page shows, with the creation time as epoch seconds for the
# uptime timeline. Ordered as the page groups them.
PAGE_SOURCE_SELECT = (
    f"SELECT {', '.join(_expr(n, '{}_text') for n in fields.PAGE)},"
    f" {NEEDED} AS needed, extract(epoch FROM created_at)::float8 AS created_s"
    " FROM data_sources"
)


def all_maintenance_spans(since: float, until: float) -> dict[str, list[tuple[float, float]]]:
    """Every source's maintenance windows' occurrences overlapping [since, until), in order."""
    rows = fetch_all(
        "SELECT s.id, date_part('epoch', lower(r)), date_part('epoch', upper(r))"
        " FROM maintenance_windows w,"
        " healthd_window_spans(w, to_timestamp(%(since)s), to_timestamp(%(until)s)) AS r,"
        " data_sources s WHERE w.source_ids IS NULL OR s.id = ANY (w.source_ids)"
        " ORDER BY 1, 2",
        {"since": since, "until": until},
        tuples=True,
    )
    out: dict[str, list[tuple[float, float]]] = {}
    for sid, lo, hi in rows:
        out.setdefault(sid, []).append((float(lo), float(hi)))
    return out


def page_sources(rise: int, fall: int) -> list[dict[str, Any]]:
    return fetch_all(
        f"{PAGE_SOURCE_SELECT} ORDER BY type, name, id",
        {"rise": rise, "fall": fall, "connected": CONNECTED},
    )


def page_tally() -> list[dict[str, Any]]:
    """How many sources per (type, status, enabled, in a maintenance window now): the
    banner, the counts and the groups' sizes of a page that does not show every row."""
    return fetch_all(
        "SELECT type, connection_status, enabled, in_maintenance, count(*)::int AS n FROM"
        f" (SELECT type, connection_status, enabled, {COMPUTED['in_maintenance']}"
        "  AS in_maintenance FROM data_sources) t GROUP BY 1, 2, 3, 4 ORDER BY 1"
    )


# How soon a reader wants to see a source on a bounded page: down (outside maintenance)
# first, then changing (pending or flapping), then unknown, then the rest; disabled last.
ATTENTION = (
    "CASE WHEN NOT enabled THEN 4"
    f" WHEN connection_status IN ({sql_list(DOWN)}) AND NOT in_maintenance THEN 0"
    " WHEN pending_status IS NOT NULL OR flapping THEN 1"
    f" WHEN connection_status = {sql_list((UNKNOWN,))} THEN 2 ELSE 3 END"
)


def page_ranked(
    rise: int, fall: int, first: int, last: int, kind: str | None = None
) -> list[dict[str, Any]]:
    """The rows ``first``..``last`` (1-based) of every type (or of ``kind``'s only), in
    ATTENTION order then by name: what a bounded page shows, read without the rest. The
    ranking reads the few columns it needs of every source; the page's columns (and their
    computed ones) are read for the rows shown only."""
    where = "WHERE type = %(kind)s" if kind is not None else ""
    return fetch_all(
        "WITH r AS (SELECT id, row_number() OVER (PARTITION BY type"
        f" ORDER BY {ATTENTION}, name, id) AS rank FROM (SELECT id, type, name, enabled,"
        " connection_status, pending_status, flapping,"
        f" {COMPUTED['in_maintenance']} AS in_maintenance FROM data_sources {where}) a)"
        f" SELECT p.*, r.rank FROM ({PAGE_SOURCE_SELECT} WHERE id IN"
        " (SELECT id FROM r WHERE rank BETWEEN %(first)s AND %(last)s)) p"
        " JOIN r USING (id) ORDER BY p.type, r.rank",
        {
            "rise": rise,
            "fall": fall,
            "connected": CONNECTED,
            "kind": kind,
            "first": first,
            "last": last,
        },
    )


def page_source(source_id: str, rise: int, fall: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = fetch_one(
        f"{PAGE_SOURCE_SELECT} WHERE id = %(id)s",
        {"id": source_id, "rise": rise, "fall": fall, "connected": CONNECTED},
    )
    return row


def uptime_rows(
    source_id: str, days: int
) -> tuple[float, float, list[float], str, list[tuple[float, float]]] | None:
    """(created_at, now, transition times, their statuses' first letters, maintenance
    spans) of one source: its last transition before the range of ``days`` days and every
    one inside it, oldest first, and its maintenance windows' occurrences over the range;
    times as epoch seconds; None for an unknown source. One statement: two range scans of
    the (source_id, at) index aggregated into two values, so 10,000 transitions cross the
    wire as one row. The API serves the daily rollup instead (figures.plans); this is
    what the checks holding it against every transition read (uptime.Timeline)."""
    # binary: the text form of 10,000 floats cost more to parse than the query took
    row: tuple[Any, ...] | None = fetch_one_binary(
        "SELECT date_part('epoch', s.created_at), date_part('epoch', now()),"
        " coalesce(t.times, '{}'), coalesce(t.kinds, ''),"
        # the source's maintenance windows over the range, as flat epoch pairs
        " coalesce((SELECT array_agg(v ORDER BY lower(r), k) FROM maintenance_windows w,"
        "  healthd_window_spans(w, now() - make_interval(days => %(days)s), now()) AS r,"
        "  LATERAL (VALUES (1, date_part('epoch', lower(r))), (2, date_part('epoch', upper(r))))"
        "  AS p(k, v) WHERE w.source_ids IS NULL OR s.id = ANY (w.source_ids)), '{}')"
        " FROM data_sources s CROSS JOIN ("
        # no ORDER BY in the aggregates: the two index scans below already come in time
        # order, and Append keeps them in order (sorting 10,000 rows again cost half the time)
        "  SELECT array_agg(x.e) AS times, string_agg(x.k, '') AS kinds FROM ("
        "   (SELECT date_part('epoch', at) AS e, left(to_status, 1) AS k FROM status_history"
        "    WHERE source_id = %(id)s AND event = 'transition'"
        "    AND at < now() - make_interval(days => %(days)s) ORDER BY at DESC LIMIT 1)"
        "   UNION ALL"
        "   (SELECT date_part('epoch', at), left(to_status, 1) FROM status_history"
        "    WHERE source_id = %(id)s AND event = 'transition'"
        "    AND at >= now() - make_interval(days => %(days)s) ORDER BY at)) x"
        " ) t WHERE s.id = %(id)s",
        {"id": source_id, "days": days},
    )
    if row is None:
        return None
    flat = row[4]
    spans = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
    return float(row[0]), float(row[1]), row[2], row[3], spans


def all_transitions(days: int) -> tuple[float, list[tuple[str, float, str]]]:
    """(since, rows) for every source: each one's last transition before the range and
    every one inside it, as (source_id, epoch, to_status), unordered."""
    rows = fetch_all(
        "WITH r AS (SELECT now() - make_interval(days => %(days)s) AS since)"
        " SELECT '', date_part('epoch', since), '' FROM r"
        " UNION ALL SELECT source_id, date_part('epoch', at), to_status"
        "  FROM status_history, r WHERE event = 'transition' AND at >= r.since"
        " UNION ALL SELECT s.id, p.e, p.to_status FROM data_sources s, r CROSS JOIN LATERAL"
        "  (SELECT date_part('epoch', h.at) AS e, h.to_status FROM status_history h"
        "   WHERE h.source_id = s.id AND h.event = 'transition' AND h.at < r.since"
        "   ORDER BY h.at DESC LIMIT 1) p",
        {"days": days},
        tuples=True,
    )
    since = next(r[1] for r in rows if r[0] == "" and r[2] == "")
    return since, [r for r in rows if r[0] != "" or r[2] != ""]


def transitions_after(after_id: int, limit: int) -> list[tuple[int, str, float, str, str]]:
    """(id, source_id, epoch, to_status, event) of history rows after an id, in id order."""
    return fetch_all(
        "SELECT id, source_id, date_part('epoch', at), to_status, event"
        " FROM status_history WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
        tuples=True,
    )


def recent_transitions(source_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest transitions (of one source, or all), with each source's name."""
    where = "h.event = 'transition'" + (" AND h.source_id = %(id)s" if source_id else "")
    return fetch_all(
        "SELECT h.id, h.source_id, s.name, h.from_status, h.to_status, h.at, h.error_message,"
        f" h.results FROM status_history h LEFT JOIN data_sources s ON s.id = h.source_id"
        f" WHERE {where} ORDER BY h.id DESC LIMIT %(limit)s",
        {"id": source_id, "limit": limit},
    )


def latency_buckets(
    source_id: str, window_s: int, step_s: int, slots: int
) -> list[tuple[Any, ...]]:
    """The source's rollups over the last window_s seconds merged into step_s buckets:
    (start, count, failures, max_ms, hist..., phased, phase sums...), oldest first (the
    phase sums in healthd/core/phases.py's NAMES order)."""
    sums = ", ".join(f"sum(hist[{i}])::int" for i in range(1, slots + 1))
    phases = ", ".join(f"sum({n}_ms_sum)" for n in PHASES)
    return fetch_all(
        "SELECT date_bin(make_interval(secs => %(step)s), bucket, 'epoch') AS start,"
        f" sum(count)::int, sum(failures)::int, max(max_ms), {sums},"
        f" sum(phased)::int, {phases}"
        " FROM latency_rollups WHERE source_id = %(id)s"
        " AND bucket >= date_bin(make_interval(secs => %(step)s),"
        "   now() - make_interval(secs => %(window)s), 'epoch')"
        " GROUP BY 1 ORDER BY 1",
        {"id": source_id, "window": window_s, "step": step_s},
        tuples=True,
    )


def page_head() -> tuple[int, float]:
    """(the newest history id, the database's clock as epoch seconds): the page is rendered
    as of this id, and its script resumes the stream after it."""
    row = fetch_one(
        "SELECT coalesce(max(id), 0), date_part('epoch', now()) FROM status_history",
        tuples=True,
    )
    assert row is not None
    return int(row[0]), float(row[1])


# -- operations: maintenance windows, the delivery log ----------------------------------


def maintenance_windows() -> list[dict[str, Any]]:
    """Windows open now or to come, with their current or next occurrence."""
    return fetch_all(
        "SELECT * FROM (SELECT w.id, w.source_ids, w.starts_at, w.ends_at, w.every_dow,"
        " to_char(w.every_time, 'HH24:MI') AS every_time, w.tz,"
        " extract(epoch FROM w.duration)::float8 AS duration_s, w.reason,"
        " lower(o.r) AS current_start, upper(o.r) AS current_end, o.r @> now() AS active"
        " FROM maintenance_windows w, LATERAL (SELECT healthd_window_occurrence(w, now()) AS r) o"
        ") x WHERE current_start IS NOT NULL ORDER BY current_start, id"
    )


def deliveries(
    webhook_id: int | None, failed: bool, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    return fetch_all(*deliverylog.query(webhook_id, failed, before_id, limit))


def maintenance_spans(source_id: str, since: float, until: float) -> list[tuple[float, float]]:
    """The source's maintenance windows overlapping [since, until) (epochs), clipped to it,
    as epoch pairs in order: the time uptime counts apart (docs/operations.md,
    Maintenance windows)."""
    rows = fetch_all(
        "SELECT extract(epoch FROM greatest(lower(r), lo))::float8 AS s,"
        " extract(epoch FROM least(upper(r), hi))::float8 AS e"
        " FROM (SELECT to_timestamp(%(since)s) AS lo, to_timestamp(%(until)s) AS hi) b,"
        " maintenance_windows w, healthd_window_spans(w, b.lo, b.hi) AS r"
        " WHERE w.source_ids IS NULL OR %(id)s = ANY (w.source_ids) ORDER BY 1",
        {"id": source_id, "since": since, "until": until},
    )
    return [(float(r["s"]), float(r["e"])) for r in rows]
