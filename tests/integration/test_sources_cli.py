"""The `healthd sources` and `webhooks` commands: the error paths in process through
click's CliRunner (the `cli` fixture), the rest as the real command (`healthd_cli`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

Cli = Callable[..., Any]

GOOD = {
    "sources": [
        {
            "id": "web",
            "plugin": "http",
            "config": {"url": "http://127.0.0.1:1/"},
            "name": "Web",
            "rise": 2,
        },
        {
            "id": "ai-connection",
            "plugin": "ai-service",
            "type": "ai",
            "config": {"endpoint": "http://127.0.0.1:1/v1", "api_key": {"env": "OPENAI_KEY"}},
        },
        {
            "id": "db",
            "plugin": "postgres",
            "enabled": False,
            "interval_s": 60,
            "config": {"dsn": {"file": "pg-dsn"}},
        },
    ]
}


def _write(tmp_path: Path, data: Any, name: str = "s.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data) if name.endswith(".json") else data)
    return p


def test_import_list_export_round_trip(healthd_cli: Cli, tmp_path: Path) -> None:
    r = healthd_cli("sources", "import", str(_write(tmp_path, GOOD)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3 added, 0 updated, 0 removed, 0 unchanged"
    listed = json.loads(healthd_cli("sources", "list", "--json").stdout)
    assert listed["count"] == 3 and {s["id"] for s in listed["sources"]} == {
        "web",
        "ai-connection",
        "db",
    }
    exported = json.loads(healthd_cli("sources", "export").stdout)
    by_id = {s["id"]: s for s in exported["sources"]}
    for entry in GOOD["sources"]:
        for key, value in entry.items():
            assert by_id[entry["id"]][key] == value, (entry["id"], key)
    # secret references stay references: nothing was resolved into the table
    assert by_id["ai-connection"]["config"]["api_key"] == {"env": "OPENAI_KEY"}
    # the export re-imports as a no-op
    again = healthd_cli("sources", "import", str(_write(tmp_path, exported, "again.json")))
    assert again.stdout.strip() == "0 added, 0 updated, 0 removed, 3 unchanged"


def test_export_redacts_inline_secrets_unless_asked(healthd_cli: Cli, tmp_path: Path) -> None:
    secret = "sk-inline-9f8e7d"
    inline = {
        "sources": [
            {
                "id": "ai-connection",
                "plugin": "ai-service",
                "config": {"endpoint": "http://127.0.0.1:1/v1", "api_key": secret},
            },
            {
                "id": "web",
                "plugin": "http",
                "config": {
                    "url": "http://127.0.0.1:1/",
                    "headers": {"Authorization": f"Bearer {secret}"},
                },
            },
            {
                "id": "db",
                "plugin": "postgres",
                "config": {"dsn": f"postgresql://app:{secret}@127.0.0.1:1/app"},
            },
            {
                "id": "ref",
                "plugin": "ai-service",
                "config": {"endpoint": "http://127.0.0.1:1/v1", "api_key": {"env": "KEY"}},
            },
        ]
    }
    assert healthd_cli("sources", "import", str(_write(tmp_path, inline))).returncode == 0
    r = healthd_cli("sources", "export")
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout and secret not in r.stderr
    by_id = {s["id"]: s["config"] for s in json.loads(r.stdout)["sources"]}
    assert by_id["ai-connection"]["api_key"] == ""
    assert by_id["web"]["headers"] == {"Authorization": ""}
    assert by_id["db"]["dsn"] == ""
    assert by_id["ref"]["api_key"] == {"env": "KEY"}
    assert "--with-secrets" in r.stderr
    full = healthd_cli("sources", "export", "--with-secrets")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout) == inline | {
        "sources": [
            {**s, "name": s["id"], "type": "service", "enabled": True}
            for s in sorted(inline["sources"], key=lambda s: str(s["id"]))
        ]
    }


def test_import_toml_and_prune(
    healthd_cli: Cli, tmp_path: Path, db: psycopg.Connection[Any]
) -> None:
    healthd_cli("sources", "import", str(_write(tmp_path, GOOD)))
    toml = '[[sources]]\nid = "web"\nplugin = "http"\nname = "Web 2"\nconfig = { url = "http://127.0.0.1:2/" }\n'
    r = healthd_cli("sources", "import", "--prune", str(_write(tmp_path, toml, "s.toml")))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0 added, 1 updated, 2 removed, 0 unchanged"
    assert db.execute("SELECT id, name, config->>'url' FROM data_sources").fetchall() == [
        ("web", "Web 2", "http://127.0.0.1:2/")
    ]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (
            {"id": "has space", "plugin": "http", "config": {"url": "http://x/"}},
            "): id: must be 1-50",
        ),
        ({"id": "x" * 51, "plugin": "http", "config": {"url": "http://x/"}}, "): id: must be 1-50"),
        ({"id": "b", "config": {"url": "http://x/"}}, "entry 2 (id 'b'): plugin: is required"),
        ({"id": "b", "plugin": "http"}, "entry 2 (id 'b'): config: is required"),
        (
            {"id": "b", "plugin": "nope", "config": {}},
            "entry 2 (id 'b'): plugin: unknown plugin 'nope'",
        ),
        ({"id": "b", "plugin": "http", "config": {}}, "entry 2 (id 'b'): config.url: is required"),
        (
            {"id": "b", "plugin": "http", "config": {"url": 5}},
            "entry 2 (id 'b'): config.url: must be a string",
        ),
        (
            {"id": "b", "plugin": "http", "config": {"url": "http://x/"}, "interval_s": 0},
            "entry 2 (id 'b'): interval_s: must be a positive",
        ),
        (
            {"id": "b", "plugin": "http", "config": {"url": "http://x/"}, "rise": 1.5},
            "entry 2 (id 'b'): rise: must be a positive integer",
        ),
        (
            {"id": "b", "plugin": "http", "config": {"url": "http://x/"}, "colour": "red"},
            "entry 2 (id 'b'): colour: unknown field",
        ),
        (
            {"id": "a", "plugin": "http", "config": {"url": "http://x/"}},
            "entry 2 (id 'a'): id: duplicate",
        ),
    ],
)
def test_one_bad_entry_changes_nothing(
    cli: Cli,
    tmp_path: Path,
    db: psycopg.Connection[Any],
    entry: dict[str, Any],
    needle: str,
) -> None:
    good = {"id": "a", "plugin": "tcp", "config": {"host": "127.0.0.1", "port": 1}}
    r = cli("sources", "import", str(_write(tmp_path, {"sources": [good, entry]})))
    assert r.returncode == 1
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr, r.stderr
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


def test_crud_commands(healthd_cli: Cli, db: psycopg.Connection[Any]) -> None:
    assert (
        healthd_cli(
            "sources",
            "add",
            "api",
            "--plugin",
            "http",
            "--config",
            '{"url": "http://127.0.0.1:1/", "headers": {"Authorization": "Bearer s3cr3t-v4lue"}}',
            "--interval",
            "5",
        ).returncode
        == 0
    )
    shown = healthd_cli("sources", "show", "api", "--json")
    data = json.loads(shown.stdout)
    assert data["interval_s"] == 5 and data["config"]["headers"] == {"Authorization": ""}
    assert "s3cr3t-v4lue" not in shown.stdout + healthd_cli("sources", "list", "--json").stdout
    assert (
        healthd_cli("sources", "update", "api", "--name", "The API", "--rise", "2").returncode == 0
    )
    assert db.execute("SELECT name, rise, interval_s FROM data_sources").fetchone() == (
        "The API",
        2,
        5,
    )
    assert healthd_cli("sources", "disable", "api").returncode == 0
    assert db.execute("SELECT enabled FROM data_sources").fetchone() == (False,)
    assert healthd_cli("sources", "enable", "api").returncode == 0
    assert db.execute("SELECT enabled FROM data_sources").fetchone() == (True,)
    assert healthd_cli("sources", "remove", "api").returncode == 0
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("sources", "show", "ghost"), "no source with id 'ghost'"),
        (("sources", "remove", "ghost"), "no source with id 'ghost'"),
        (("sources", "enable", "ghost"), "no source with id 'ghost'"),
        (("sources", "update", "ghost", "--name", "x"), "no source with id 'ghost'"),
        (
            ("sources", "add", "x", "--plugin", "http", "--config", "{bad"),
            "--config: is not valid JSON",
        ),
        (("sources", "add", "x", "--plugin", "http", "--config", "{}"), "config.url: is required"),
        (("sources", "add", "x y", "--plugin", "http", "--config", "{}"), "id: must be"),
        (
            (
                "sources",
                "add",
                "x",
                "--plugin",
                "http",
                "--config",
                '{"url":"http://a/"}',
                "--rise",
                "0",
            ),
            "rise: must be a positive integer",
        ),
        (("sources", "import", "/nonexistent.json"), "/nonexistent.json: No such file"),
        (("webhooks", "add", "ftp://x"), "URL: must start with http"),
        (("webhooks", "remove", "99"), "no webhook with id 99"),
        (("sources", "frobnicate"), "No such command"),
    ],
)
def test_error_paths_are_one_line(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    r = cli(*args)
    assert r.returncode in (1, 2), r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_duplicate_add_and_missing_schema(
    healthd_cli: Cli, pg_cluster: Any, tmp_path: Path
) -> None:
    cfg = '{"url": "http://127.0.0.1:1/"}'
    assert healthd_cli("sources", "add", "a", "--plugin", "http", "--config", cfg).returncode == 0
    r = healthd_cli("sources", "add", "a", "--plugin", "http", "--config", cfg)
    assert r.returncode == 1 and r.stderr.strip() == "healthd: a source with id 'a' already exists"
    r = healthd_cli("sources", "list", env={"HEALTHD_DATABASE_URL": pg_cluster.url("postgres")})
    assert r.returncode == 1 and "run `healthd migrate` first" in r.stderr
    r = healthd_cli("sources", "list", env={"HEALTHD_DATABASE_URL": ""})
    assert (
        r.returncode == 1
        and r.stderr.strip()
        == "healthd: HEALTHD_DATABASE_URL: is not set (a libpq URL or conninfo string)"
    )


def test_webhooks_cli(healthd_cli: Cli) -> None:
    r = healthd_cli(
        "webhooks",
        "add",
        "http://u:pw@127.0.0.1:9/hook?token=abc",
        "--secret-env",
        "HOOK_SECRET",
        "--events",
        "transition",
    )
    assert r.returncode == 0 and r.stdout.strip() == "added webhook 1"
    listed = healthd_cli("webhooks", "list")
    assert (
        "127.0.0.1:9/hook" in listed.stdout
        and "pw" not in listed.stdout
        and "abc" not in listed.stdout
    )
    assert healthd_cli("webhooks", "remove", "1").returncode == 0
