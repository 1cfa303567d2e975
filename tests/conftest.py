"""The fixtures live in fixture modules, one per kind of thing they set up (the psycopg
way); each test module takes what it needs from them and imports no other test module."""

from __future__ import annotations

pytest_plugins = [
    "tests.fix_db",  # pg_cluster, private_cluster, db_url, db
    "tests.fix_servers",  # target (and the server classes)
    "tests.fix_procs",  # daemons, healthd_cli (subprocess), cli (in process), wait_for
    "tests.fix_api",  # app, client
    "tests.fix_ops",  # the operations tests' sources, receivers and API client
    "tests.fix_npm",  # npm_modules: axe-core, badge-maker
    "tests.fix_browser",  # browser: Debian's chromium through chromedriver
    "tests.fix_kinds",  # redis, MariaDB, gRPC, SMTP, TLS servers; fake AI providers
]
