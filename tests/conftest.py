"""The fixtures live in fixture modules, one per kind of thing they set up (the psycopg
way); each test module takes what it needs from them and imports no other test module."""

from __future__ import annotations

from typing import Any

pytest_plugins = [
    "tests.fix_db",  # pg_cluster, private_cluster, db_url, db
    "tests.fix_servers",  # target (and the server classes)
    "tests.fix_procs",  # daemons, healthd_cli (subprocess), cli (in process), wait_for
    "tests.fix_api",  # app, client
    "tests.fix_ops",  # the operations tests' sources, receivers and API client
    "tests.fix_kinds",  # redis, MariaDB, gRPC, SMTP, TLS servers; fake AI providers
]


def __getattr__(name: str) -> Any:
    # `from tests.conftest import wait_for` keeps working for code written before the
    # move; imported lazily, because importing a plugin module before pytest registers it
    # would keep its asserts from being rewritten
    if name == "wait_for":
        from tests.fix_procs import wait_for

        return wait_for
    raise AttributeError(name)
