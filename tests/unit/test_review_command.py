"""The command plugin keeps the start of what a command prints, not all of it: `yes`
under a 3 s timeout grew the daemon by 1.5 GiB (communicate() holds every byte)."""

from __future__ import annotations

import asyncio
import resource

from healthd import plugins


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_command_that_floods_its_output_costs_a_bounded_few_kilobytes() -> None:
    async def go() -> tuple[str, str]:
        p = plugins.create("command", {"argv": ["yes", "x" * 1000]})
        r = await plugins.run_check(p, 2.0)
        return r.status, r.message

    before = _rss_mib()
    status, message = asyncio.run(go())
    grown = _rss_mib() - before
    assert status == "disconnected" and "timed out" in message, (status, message)
    assert grown < 64, f"grew {grown:.0f} MiB"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1 << 20  # KiB: < 1 GiB


def test_a_command_that_prints_much_and_exits_is_judged_by_its_first_line() -> None:
    async def go() -> tuple[str, str]:
        script = "echo 'OK - fine | t=1'; head -c 5000000 /dev/zero | tr '\\0' 'z'; exit 0"
        p = plugins.create("command", {"argv": ["sh", "-c", script]})
        r = await plugins.run_check(p, 10.0)
        return r.status, r.message

    status, message = asyncio.run(go())
    assert (status, message) == ("connected", "OK - fine | t=1")
