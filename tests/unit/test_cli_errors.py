"""CLI error paths that need neither a database nor a server, through click's CliRunner
(in process, the same entry point and one-line error policy as the installed command).
End-to-end runs of the real command stay in tests/integration."""

from __future__ import annotations

from tests.fix_procs import invoke


def test_probe_refuses_an_unknown_plugin_and_a_bad_config() -> None:
    r = invoke("probe", "--plugin", "nope", "--config", "{}")
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "unknown plugin 'nope'" in r.stderr
    r = invoke("probe", "--plugin", "http", "--config", "{}")
    assert r.returncode == 3 and "config.url: is required" in r.stderr
