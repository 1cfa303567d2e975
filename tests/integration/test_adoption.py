"""`healthd migrate` on the original backend's own data_sources table: adopted in place
(every row and original column kept, brought to exactly 0001's shape, what was changed
recorded), refused in one line naming row and column with nothing changed when a value
cannot be brought over, a no-op the second time, and never applied to a table healthd
made. The backend's own statements keep working on the adopted table."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.local import embedded
from healthd.store import migrate
from tests.fix_original import (
    BACKEND_INSERT,
    BACKEND_SELECT,
    BACKEND_UPDATE_CONFIG,
    BACKEND_UPDATE_ENABLED,
    catalog,
    migrate_cli,
    original_database,
    original_rows,
)

KEY = "sk-original-backend-4242"
AI = {"endpoint": "https://api.example.com/v1", "apiKey": KEY}
TESTED = "2025-10-20 10:30:45.123"  # as the original's TIMESTAMP columns hold it
ROWS = [
    (
        "ai-connection",
        "AI Service",
        "ai",
        "ai-service",
        AI,
        True,
        "connected",
        TESTED,
        "success",
        None,
        "2025-10-01 09:00:00",
        TESTED,
    ),
    # what a backend that never filled name and type, nor set enabled, left behind
    (
        "crm",
        None,
        None,
        "salesforce",
        {"instance": "acme"},
        None,
        "ENABLED",
        None,
        None,
        None,
        "2025-10-02 09:00:00",
        None,
    ),
    (
        "billing",
        "Billing",
        "database",
        "postgres",
        {"dsn": "postgresql://billing/x"},
        False,
        "Error",
        TESTED,
        "FAILED",
        "connection refused",
        "2025-10-03 09:00:00",
        TESTED,
    ),
]


def at_utc(text: str, offset_h: int) -> datetime:
    """A TIMESTAMP value read in a zone ``offset_h`` hours off UTC, as a UTC time."""
    zone = timezone(timedelta(hours=offset_h))
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def test_adopted_in_place_to_0001s_shape_and_twice_is_a_noop(
    pg_cluster: embedded.Cluster, db_url: str
) -> None:
    url = original_database(pg_cluster, ROWS)
    # the zone the TIMESTAMP values mean is the session's: PGTZ (libpq) chooses it here
    first = migrate_cli(url, env={"PGTZ": "America/New_York"})
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == (
        "adopted the original data_sources table: 3 row(s) and every original column kept;"
        " TIMESTAMP values read in time zone America/New_York; values mapped:"
        " connection_status 2, enabled 1, name 1, test_status 1, type 1, updated_at 1"
    )
    assert first.stdout.splitlines()[1].startswith(
        f"applied {len(migrate.available())} migration(s)"
    )

    # exactly the table (and the rest) a fresh `healthd migrate` makes, plus the record of
    # the adoption and the trigger that fills the backend's NULLs
    adopted, native = catalog(url), catalog(db_url)
    extra = {
        "triggers": [t for t in adopted["triggers"] if t[0] == "data_sources_adopted_fill"],
        "tables": [("healthd_adoption",)],
        "functions": [
            ("healthd_adopted_fill()",),
            ("healthd_adopted_status(text)",),
            ("healthd_adopted_test_status(text)",),
        ],
    }
    for key in native:
        assert [x for x in adopted[key] if x not in extra.get(key, [])] == native[key], key
    assert all(extra.values())

    rows = original_rows(url)
    assert sorted(rows) == ["ai-connection", "billing", "crm"]
    ai, crm, billing = rows["ai-connection"], rows["crm"], rows["billing"]
    # config kept as the backend wrote it (apiKey and all), now jsonb
    assert ai["config"] == AI and crm["config"] == {"instance": "acme"}
    # 2025-10-20 is summer time in New York: UTC-4
    assert ai["last_tested_at"] == at_utc(TESTED, -4) == ai["updated_at"]
    assert ai["created_at"] == at_utc("2025-10-01 09:00:00", -4)
    assert (ai["name"], ai["type"], ai["enabled"], ai["connection_status"]) == (
        "AI Service",
        "ai",
        True,
        "connected",
    )
    # the documented mapping: NULLs filled, words healthd does not spell -> unknown
    assert (crm["name"], crm["type"], crm["enabled"], crm["connection_status"]) == (
        "crm",
        "service",
        False,
        "unknown",
    )
    assert crm["updated_at"] == crm["created_at"]
    assert (billing["connection_status"], billing["test_status"]) == ("error", "failed")
    assert billing["test_error_message"] == "connection refused" and billing["enabled"] is False

    second = migrate_cli(url, env={"PGTZ": "Asia/Tokyo"})
    assert (second.returncode, second.stdout, second.stderr) == (0, "applied 0 migration(s)\n", "")
    assert catalog(url) == adopted and original_rows(url) == rows

    status = migrate_cli(url, "--status")
    assert status.returncode == 0, status.stdout
    assert "pending" not in status.stdout and status.stdout.count("applied  ") == len(
        migrate.available()
    )
    assert "data_sources: adopted from the original table" in status.stdout
    assert "row 'crm' connection_status: 'ENABLED' -> 'unknown'" in status.stdout
    assert "row 'billing' test_status: 'FAILED' -> 'failed'" in status.stdout
    assert KEY not in first.stdout + second.stdout + status.stdout


def test_the_zone_is_the_databases_own_when_the_session_sets_none(
    pg_cluster: embedded.Cluster,
) -> None:
    url = original_database(pg_cluster, ROWS[:1])
    with psycopg.connect(url, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f"ALTER DATABASE {dbname} SET timezone = 'Asia/Tokyo'")
    proc = migrate_cli(url, env={"PGTZ": None, "PGOPTIONS": None})
    assert proc.returncode == 0 and "time zone Asia/Tokyo" in proc.stdout, proc.stdout
    assert original_rows(url)["ai-connection"]["last_tested_at"] == at_utc(TESTED, 9)


def refuse_bad_id(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE data_sources SET id = 'billing db' WHERE id = 'billing'")


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (refuse_bad_id, "row 'billing db': column id must be 1-50 characters"),
        (
            lambda c: c.execute("UPDATE data_sources SET plugin = NULL WHERE id = 'crm'"),
            "row 'crm': column plugin is NULL",
        ),
        (
            # JSON accepts a \u0000 escape, jsonb does not; the secret beside it is not quoted
            lambda c: c.execute(
                "UPDATE data_sources SET config = %s WHERE id = 'ai-connection'",
                (json.dumps({"endpoint": "x", "apiKey": KEY}).replace('"x"', '"x\\u0000"'),),
            ),
            "row 'ai-connection': column config is JSON that jsonb refuses"
            " (unsupported Unicode escape sequence)",
        ),
        (
            lambda c: c.execute("CREATE VIEW ai_view AS SELECT id, config FROM data_sources"),
            # every original column is rewritten (USING fills NULLs without firing triggers)
            "cannot alter type of a column used by a view or rule"
            ' (rule _RETURN on view ai_view depends on column "id")',
        ),
        (
            lambda c: c.execute("ALTER TABLE data_sources ALTER COLUMN config TYPE text"),
            "column config is text; healthd adopts json or jsonb there",
        ),
        (
            lambda c: c.execute("ALTER TABLE data_sources DROP COLUMN test_status"),
            "it has no column test_status",
        ),
    ],
    ids=["id", "plugin", "config", "view", "type", "column"],
)
def test_what_cannot_be_adopted_is_one_line_and_nothing_changes(
    pg_cluster: embedded.Cluster, spoil: Any, words: str
) -> None:
    url = original_database(pg_cluster, ROWS)
    with psycopg.connect(url, autocommit=True) as conn:
        spoil(conn)
    before, rows = catalog(url), original_rows(url)
    proc = migrate_cli(url)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("healthd: cannot adopt data_sources: ")
    assert words in proc.stderr and proc.stderr.endswith("(nothing was changed)\n"), proc.stderr
    assert KEY not in proc.stderr
    assert catalog(url) == before and original_rows(url) == rows
    assert before["tables"] == [("data_sources",)]  # no schema_migrations, nothing of healthd's
    if spoil is refuse_bad_id:  # once the row is fixed, it is adopted
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE data_sources SET id = 'billing-db' WHERE id = 'billing db'")
        assert migrate_cli(url).returncode == 0


def test_the_backend_goes_on_writing_its_own_columns(pg_cluster: embedded.Cluster) -> None:
    url = original_database(pg_cluster, ROWS)
    assert migrate_cli(url, env={"PGTZ": "UTC"}).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:

        def versions(sid: str) -> tuple[datetime, datetime]:
            row = conn.execute(
                "SELECT config_changed_at, updated_at FROM data_sources WHERE id = %s", (sid,)
            ).fetchone()
            assert row is not None
            return row[0], row[1]

        # the seed's INSERT, NULLs and all: filled as the adoption filled them
        conn.execute(BACKEND_INSERT, ("late", None, None, "http", '{"url": "http://x/"}', True))
        conn.execute(
            "INSERT INTO data_sources (id, name, type, plugin, config, enabled,"
            " connection_status, test_status) VALUES ('late2', 'Late', 'http', 'http',"
            " '{\"url\": \"http://x/\"}', NULL, 'ENABLED', 'pending')"
        )
        got = conn.execute(
            "SELECT id, name, type, enabled, connection_status, test_status, pending_count"
            " FROM data_sources WHERE id LIKE 'late%' ORDER BY id"
        ).fetchall()
        assert got == [
            ("late", "late", "service", True, "unknown", None, 0),
            ("late2", "Late", "http", False, "unknown", None, 0),
        ]
        assert conn.execute(BACKEND_SELECT, ("late",)).fetchone() == ("unknown", None, None, None)

        # updated_at = NOW() alone, or with the same config, is no change of definition
        changed, updated = versions("ai-connection")
        conn.execute(BACKEND_UPDATE_CONFIG, (json.dumps(AI), "ai-connection"))
        conn.execute("UPDATE data_sources SET updated_at = NOW() WHERE id = 'ai-connection'")
        assert versions("ai-connection")[0] == changed
        assert versions("ai-connection")[1] > updated
        # a different config, or enabled, is
        conn.execute(
            BACKEND_UPDATE_CONFIG, (json.dumps({**AI, "apiKey": "sk-new"}), "ai-connection")
        )
        assert versions("ai-connection")[0] > changed
        changed = versions("late")[0]
        conn.execute(BACKEND_UPDATE_ENABLED, (False, "late"))
        assert versions("late")[0] > changed
        # and the backend's read of its row sees the original's four columns
        assert conn.execute(BACKEND_SELECT, ("ai-connection",)).fetchone() == (
            "connected",
            at_utc(TESTED, 0),
            "success",
            None,
        )


def test_a_table_healthd_made_is_never_adopted(db_url: str) -> None:
    before = catalog(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO data_sources (id, name, plugin) VALUES ('a', 'A', 'http')")
        # as if schema_migrations were lost: every (idempotent) file runs again
        conn.execute("DELETE FROM schema_migrations")
    assert migrate.apply(db_url) == [m.name for m in migrate.available()]
    assert catalog(db_url) == before


def test_another_tools_schema_migrations_is_refused(pg_cluster: embedded.Cluster) -> None:
    url = original_database(pg_cluster, ROWS[:1])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean)")
    before = catalog(url)
    for args in ((), ("--status",)):
        proc = migrate_cli(url, *args)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1 and "schema_migrations table is another tool's" in out, out
    assert catalog(url) == before


def rollback_sql() -> str:
    """The rollback script of docs/adopting.md, as an operator copies it from there."""
    text = (Path(__file__).parents[2] / "docs" / "adopting.md").read_text()
    section = text.split("## Rolling back", 1)[1]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


def test_the_documented_rollback_gives_the_original_table_back(
    pg_cluster: embedded.Cluster,
) -> None:
    url = original_database(pg_cluster, ROWS)
    pristine = original_database(pg_cluster, ROWS)
    want, rows = catalog(pristine), original_rows(pristine)
    assert migrate_cli(url, env={"PGTZ": "America/New_York"}).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE data_sources SET name = 'CRM' WHERE id = 'crm'")  # the backend's
        conn.execute(rollback_sql())
    assert catalog(url) == want
    back = original_rows(url)
    rows["crm"] = {**rows["crm"], "name": "CRM"}
    # what the adoption mapped stays mapped; everything else is as it was, TIMESTAMPs too
    for sid, row in rows.items():
        for col, value in row.items():
            mapped = (sid, col) in {
                ("crm", "type"),
                ("crm", "enabled"),
                ("crm", "connection_status"),
                ("crm", "updated_at"),
                ("billing", "connection_status"),
                ("billing", "test_status"),
            }
            assert mapped or back[sid][col] == value, (sid, col, back[sid][col], value)
    assert back["ai-connection"]["last_tested_at"] == datetime.fromisoformat(TESTED)
    # and it can be adopted again
    assert migrate_cli(url).returncode == 0


def test_three_migrations_at_once_adopt_once(pg_cluster: embedded.Cluster) -> None:
    url = original_database(pg_cluster, ROWS)
    cmd = [sys.executable, "-m", "healthd", "--database-url", url, "migrate"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    # the advisory lock serialises them: one adopts and migrates, the others find it done
    assert sorted(o.startswith("adopted the original") for o, _ in outs) == [False, False, True]
    assert sum(o == "applied 0 migration(s)\n" for o, _ in outs) == 2
