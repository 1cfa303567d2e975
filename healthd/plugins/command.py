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
import re
import signal
import time

from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
MESSAGE_LIMIT = 1000  # the first line whole, perfdata included, up to this
OUTPUT_LIMIT = 64 << 10  # what of a command's output is kept: its first line is within it
READ_SIZE = 64 << 10


class CommandPlugin(Plugin):
    name = "command"
    description = (
        "Runs an executable with the Nagios plugin convention"
        " (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
    )
    fields = {
        "argv": Field(
            "list",
            required=True,
            refs=True,
            help="the program and its arguments (an argument may be a secret reference)",
        ),
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
            from healthd.core.errors import ConfigError

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
            out = await asyncio.wait_for(_output(proc), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            # read the pipe to its end too (dropped), so that the transport closes now
            # and not when the loop that owned it is gone
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await asyncio.wait_for(_output(proc), 1.0)
            return ProbeResult.disconnected(
                f"timed out after {timeout:g} s (process group killed)", elapsed_ms(started)
            )
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        line = first_line(out)
        code = proc.returncode if proc.returncode is not None else 3
        state = STATES.get(code, f"exit {code}")
        message = line or state
        if line and code in (1, 2, 3) and not _names_state(line, state):
            # plugins usually say it themselves ("HTTP CRITICAL - ..."): never say it twice
            message = f"{state}: {line}"
        if code in (0, 1):
            # a success keeps its text (perfdata included): it is the raw last result, and
            # a WARNING's text is the point of it
            return ProbeResult.connected(message, elapsed_ms(started))
        return ProbeResult.error(message, elapsed_ms(started))


async def _output(proc: asyncio.subprocess.Process) -> bytes:
    """The first OUTPUT_LIMIT bytes the command prints; the rest is read and dropped (so
    that it is not blocked on a full pipe), never kept: a command that floods its output
    costs the limit, not its speed times the timeout."""
    assert proc.stdout is not None
    kept = bytearray()
    while chunk := await proc.stdout.read(READ_SIZE):
        if len(kept) < OUTPUT_LIMIT:
            kept += chunk[: OUTPUT_LIMIT - len(kept)]
    await proc.wait()
    return bytes(kept)


def first_line(out: bytes) -> str:
    """The plugin's first line of output, perfdata included (``text | perfdata``)."""
    lines = out.decode(errors="replace").strip().splitlines()
    # a lone control character strips to nothing: no line at all, not an IndexError
    return lines[0].strip()[:MESSAGE_LIMIT] if lines else ""


def _names_state(line: str, state: str) -> bool:
    text = line.split("|", 1)[0]
    return re.search(rf"\b{state}\b", text) is not None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
