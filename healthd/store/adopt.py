"""Adopting the original backend's ``data_sources`` table: `healthd migrate` finds one (the
original's columns, none of healthd's), checks that every value fits healthd's rules, and
runs migrations/adopt_original_table.sql, all inside the migration's one transaction
(healthd/store/migrate.py). A value that does not fit is one line naming the row and the
column, and the transaction rolls back: nothing is changed.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import psycopg

from healthd.config.sources import ID_RE, ID_RULE
from healthd.core.errors import HealthdError, first_line
from healthd.core.schema import Adopted, Mapped

TEXT = ("character varying", "text")
TIME = ("timestamp without time zone", "timestamp with time zone")
# the original's columns, and the types of each that can be brought over safely
ORIGINAL: dict[str, tuple[str, ...]] = {
    "id": TEXT,
    "name": TEXT,
    "type": TEXT,
    "plugin": TEXT,
    "config": ("json", "jsonb"),
    "enabled": ("boolean",),
    "connection_status": TEXT,
    "last_tested_at": TIME,
    "test_status": TEXT,
    "test_error_message": TEXT,
    "created_at": TIME,
    "updated_at": TIME,
}
# a column healthd adds: a table that has it is healthd's own (0001_data_sources.sql)
HEALTHD_MARK = "pending_count"
LIMITS = {"name": 100, "type": 50, "plugin": 100}  # varchar(n) in 0001_data_sources.sql
SHOWN_ID = 60  # an id quoted in a message is cut to this many characters
SHOWN_MAPPED = 20  # mapped values read back one by one (`healthd migrate --status` lists them)

Shape = Literal["none", "healthd", "original"]


class AdoptionRefused(HealthdError):
    """The original table cannot be adopted as it is; the message names row and column."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"cannot adopt data_sources: {problem} (nothing was changed)")


def columns(conn: psycopg.Connection[Any]) -> dict[str, str] | None:
    """``data_sources``' columns and their types (as ``regtype`` spells them), or None when
    the search path holds no such table."""
    if conn.execute("SELECT to_regclass('data_sources')").fetchone() == (None,):
        return None
    rows = conn.execute(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute"
        " WHERE attrelid = 'data_sources'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchall()
    return {name: kind for name, kind in rows}


def shape(conn: psycopg.Connection[Any]) -> Shape:
    """Whose table ``data_sources`` is: nobody's yet, healthd's, or (by elimination) the
    original's, to adopt."""
    cols = columns(conn)
    if cols is None:
        return "none"
    return "healthd" if HEALTHD_MARK in cols else "original"


def adopt(conn: psycopg.Connection[Any]) -> Adopted:
    """Adopt the original table, inside the caller's transaction; AdoptionRefused (before
    any change) when it cannot be done safely."""
    check(conn)
    sql = resources.files("migrations").joinpath("adopt_original_table.sql").read_text("utf-8")
    try:
        with conn.transaction():  # a savepoint: the refusal below is the only message
            conn.execute(sql.encode())
    except psycopg.errors.FeatureNotSupported as exc:
        # e.g. a view of the backend's selects a column whose type changes
        detail = exc.diag.message_detail or ""
        raise AdoptionRefused(f"{first_line(exc)}" + (f" ({detail})" if detail else "")) from None
    found = record(conn)
    assert found is not None
    return found


def record(conn: psycopg.Connection[Any], shown: int = SHOWN_MAPPED) -> Adopted | None:
    """What the adoption kept of the original table, if this database holds one: the
    mapped values counted per column, and the first ``shown`` of them (a table of
    100,000 rows may have had as many NULLs filled)."""
    if conn.execute("SELECT to_regclass('healthd_adoption')").fetchone() == (None,):
        return None
    row = conn.execute(
        "SELECT adopted_at, time_zone, source_rows,"
        " (SELECT coalesce(jsonb_agg(jsonb_build_array(c, n) ORDER BY c), '[]') FROM"
        "   (SELECT m->>'column' AS c, count(*) AS n FROM jsonb_array_elements(mapped) AS m"
        "     GROUP BY 1) AS per_column),"
        " (SELECT coalesce(jsonb_agg(m ORDER BY i), '[]') FROM"
        "   jsonb_array_elements(mapped) WITH ORDINALITY AS e(m, i) WHERE i <= %s)"
        " FROM healthd_adoption ORDER BY adopted_at LIMIT 1",
        (shown,),
    ).fetchone()
    if row is None:
        return None
    counts = tuple((c, int(n)) for c, n in row[3])
    mapped = tuple(Mapped(m["id"], m["column"], m["from"], m["to"]) for m in row[4])
    return Adopted(row[0], row[1], row[2], counts, mapped)


def check(conn: psycopg.Connection[Any]) -> None:
    """Refuse, naming the row (or the table) and the column, what the adoption cannot
    bring over safely. Checked in order, so the first problem found is the one named."""
    cols = columns(conn) or {}
    for name, kinds in ORIGINAL.items():
        if name not in cols:
            raise AdoptionRefused(
                f"it has no column {name} (the original table has all of {', '.join(ORIGINAL)})"
            )
        if cols[name] not in kinds:
            raise AdoptionRefused(
                f"column {name} is {cols[name]}; healthd adopts {' or '.join(kinds)} there"
            )
    if not _id_is_primary_key(conn):
        raise AdoptionRefused("column id is not the table's primary key")
    for (sid,) in conn.execute("SELECT id FROM data_sources ORDER BY id"):
        if not ID_RE.match(sid):
            raise AdoptionRefused(f"row {_shown(sid)}: column id {ID_RULE}")
    _refuse_first(conn, "plugin IS NULL", "plugin", "is NULL; healthd needs it to probe the row")
    for col, limit in LIMITS.items():
        _refuse_first(conn, f"length({col}) > {limit}", col, f"is longer than {limit} characters")
    _check_configs(conn)


def _id_is_primary_key(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = 'data_sources'::regclass AND i.indisprimary"
        " AND i.indnatts = 1 AND a.attname = 'id'"
    ).fetchone()
    return bool(row and row[0])


def _refuse_first(conn: psycopg.Connection[Any], where: str, col: str, problem: str) -> None:
    row = conn.execute(f"SELECT id FROM data_sources WHERE {where} ORDER BY id LIMIT 1").fetchone()
    if row is not None:
        raise AdoptionRefused(f"row {_shown(row[0])}: column {col} {problem}")


def _check_configs(conn: psycopg.Connection[Any]) -> None:
    """A JSON value jsonb refuses (a \\u0000 escape): named by row. The whole table is
    tried first; row by row only when that fails. The message is PostgreSQL's first line
    only: its CONTEXT line quotes the JSON, and a config holds secrets."""
    try:
        with conn.transaction():
            conn.execute("SELECT count(config::jsonb) FROM data_sources")
        return
    except psycopg.DataError:
        pass
    for (sid,) in conn.execute("SELECT id FROM data_sources ORDER BY id").fetchall():
        try:
            with conn.transaction():
                conn.execute("SELECT config::jsonb FROM data_sources WHERE id = %s", (sid,))
        except psycopg.DataError as exc:
            raise AdoptionRefused(
                f"row {_shown(sid)}: column config is JSON that jsonb refuses ({first_line(exc)})"
            ) from None


def _shown(sid: str) -> str:
    return repr(sid if len(sid) <= SHOWN_ID else sid[:SHOWN_ID] + "...")
