"""Any executable, with the Nagios plugin convention, so every monitoring plugin works.

Exit 0 OK -> connected; 1 WARNING -> connected, the warning kept as the message (the
service answers; a warning is for a person to read, not a reason to flip status);
2 CRITICAL and 3 UNKNOWN (and any other code) -> error; not finishing within the timeout
-> disconnected, and the whole process group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


class CommandPlugin(Plugin):
    name = "command"
    description = (
        "Runs an executable with the Nagios plugin convention"
        " (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
    )
    fields = {
        "argv": Field("list", required=True, help="the program and its arguments"),
        "env": Field(
            "dict",
            default={},
            secret=True,
            help="extra environment (values may be secret references)",
        ),
    }

    def __init__(self, config: object) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        if not self.config["argv"]:
            from healthd.errors import ConfigError

            raise ConfigError("config.argv", "must name a program")

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        started = time.perf_counter()
        env = {**os.environ, **cfg.get("env", {})}
        try:
            proc = await asyncio.create_subprocess_exec(
                *cfg["argv"],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return ProbeResult.error(
                f"cannot run {cfg['argv'][0]}: {exc.strerror}", elapsed_ms(started)
            )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
            return ProbeResult.disconnected(
                f"timed out after {timeout:g} s (process group killed)", elapsed_ms(started)
            )
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        line = out.decode(errors="replace").strip().splitlines()[0][:300] if out.strip() else ""
        code = proc.returncode if proc.returncode is not None else 3
        state = STATES.get(code, f"exit {code}")
        message = line or state
        if code in (0, 1):
            return ProbeResult.connected(
                message if code == 0 else f"WARNING: {message}", elapsed_ms(started)
            )
        return ProbeResult.error(
            f"{state}: {message}" if line and not line.startswith(state) else message,
            elapsed_ms(started),
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
