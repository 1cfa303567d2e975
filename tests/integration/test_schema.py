"""What the code declares about the schema, held against the schema the migrations build:
a type declared in healthd/core/fields.py, or a format in healthd/notify/formats.py, cannot
drift from migrations/ unnoticed."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from healthd.core.fields import FIELDS
from healthd.core.words import EVENT_KINDS, STATUSES
from healthd.notify.formats import FORMATS

# fields.py spells types as a migration does; format_type() spells them in full
_SPELLED = {"timestamptz": "timestamp with time zone"}


def _full(sql_type: str) -> str:
    t = re.sub(r"^varchar", "character varying", sql_type)
    return _SPELLED.get(t, t)


def _check_words(db: psycopg.Connection[Any], table: str, constraint: str) -> set[str]:
    row = db.execute(
        "SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c"
        " WHERE c.conrelid = %s::regclass AND c.conname = %s",
        (table, constraint),
    ).fetchone()
    assert row is not None, f"{table}: no constraint {constraint}"
    return set(re.findall(r"'([^']*)'", row["def"] if isinstance(row, dict) else row[0]))


def test_every_declared_column_exists_with_its_declared_type(db: psycopg.Connection[Any]) -> None:
    listed = {
        r[0]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'data_sources'"
        )
    }
    stored = [f for f in FIELDS if not f.computed]
    assert {f.name for f in stored} <= listed, {f.name for f in stored} - listed
    types = dict(
        db.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'data_sources'::regclass AND attnum > 0 AND NOT attisdropped"
        ).fetchall()
    )
    wrong = {
        f.name: (f.sql_type, types[f.name]) for f in stored if _full(f.sql_type) != types[f.name]
    }
    assert not wrong, wrong
    # a computed field is the API query's, and must not shadow a real column
    assert not {f.name for f in FIELDS if f.computed} & listed


def test_the_words_and_formats_are_the_ones_the_database_allows(
    db: psycopg.Connection[Any],
) -> None:
    assert _check_words(db, "webhooks", "webhooks_format_check") == set(FORMATS)
    assert _check_words(db, "data_sources", "data_sources_connection_status_check") == set(STATUSES)
    assert _check_words(db, "status_history", "status_history_event_check") == set(EVENT_KINDS)
