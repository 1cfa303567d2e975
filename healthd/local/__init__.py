"""The local first run: `healthd up` (PostgreSQL, migrations, example sources, the daemon
and the API in the foreground) and the throwaway PostgreSQL cluster (embedded) that it
and the test suite stand on. May import everything of healthd below the CLI.
"""
