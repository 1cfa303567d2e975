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


class _Hangs(plugins.Plugin):
    name = "hangs"

    async def check(self, timeout: float) -> ProbeResult:
        await asyncio.sleep(60)
        raise AssertionError("not reached")


def test_the_backstop_cancels_a_hung_check_and_the_task_carries_on() -> None:
    async def go() -> tuple[ProbeResult, int]:
        r = await plugins.run_check(_Hangs({}), 0.05)
        await asyncio.sleep(0)  # the task is not left cancelled
        task = asyncio.current_task()
        assert task is not None
        return r, task.cancelling()

    r, cancelling = asyncio.run(go())
    assert (r.status, r.message, cancelling) == ("disconnected", "timed out after 0.05 s", 0)


def test_a_cancellation_from_outside_still_propagates() -> None:
    """A shutdown cancels probes in flight: the guard must not turn that into a result."""

    async def go() -> None:
        task = asyncio.ensure_future(plugins.run_check(_Hangs({}), 30))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


def test_a_clean_result_is_handed_on_as_it_is_and_a_dirty_one_rebuilt() -> None:
    from healthd.core.phases import Phases
    from healthd.plugins.guard import sanitised

    clean = ProbeResult("connected", "HTTP 200", 1.5, False, Phases(0.1, 0.2, 0.0, 1.0, 0.2))
    assert sanitised(clean, "http", ["sk-secret"]) is clean
    leaky = ProbeResult("error", "rejected sk-secret", 1.5)
    assert sanitised(leaky, "http", ["sk-secret"]).message == "rejected ***"
    bad = ProbeResult("connected", "x", 1.5, False, Phases(-1.0, 0, 0, 0, 0))
    assert sanitised(bad, "http").phases is None
    creds = ProbeResult("error", "at http://u:pw@h/", 1.5)
    assert "pw" not in sanitised(creds, "http").message
