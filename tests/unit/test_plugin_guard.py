"""What the guard promises around a plugin (no servers, no database): a crashing plugin
fails only its own probe, a bad config is refused naming the field."""

from __future__ import annotations

import asyncio

import pytest

from healthd import plugins
from healthd.plugins.base import ProbeResult


def test_plugin_crash_and_bad_config_are_contained() -> None:
    class Boom(plugins.Plugin):
        name = "boom"

        async def check(self, timeout: float) -> ProbeResult:
            raise RuntimeError("kaboom")

    r = asyncio.run(plugins.run_check(Boom({}), 1))
    assert r.status == "error" and "RuntimeError: kaboom" in r.message
    for name, cfg, field in [
        ("http", {"url": "ftp://x"}, "config.url"),
        ("tcp", {"host": "x"}, "config.port"),
        ("command", {"argv": []}, "config.argv"),
        ("http", {"url": "http://x", "verify_tls": "yes"}, "config.verify_tls"),
    ]:
        with pytest.raises(Exception, match=field):
            plugins.create(name, cfg)
