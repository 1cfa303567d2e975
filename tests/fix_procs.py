"""The real programs as subprocesses (`healthd run`, gunicorn with deploy/'s config,
the `healthd` command), the in-process CLI runner, and ``wait_for``, the only way a test
waits: on a condition, with a deadline."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 20,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll until predicate() is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def listening(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def procs_mentioning(needle: str) -> list[int]:
    """Processes (but this one) whose command line or environment contains ``needle``:
    what `healthd up` might have left behind."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            blob = (p / "cmdline").read_bytes() + b"\0" + (p / "environ").read_bytes()
        except OSError:
            continue
        if needle.encode() in blob:
            found.append(int(p.name))
    return found


@contextlib.contextmanager
def default_port_taken() -> Iterator[None]:
    """Hold 127.0.0.1:8080 for one `healthd up` with no flags at a time: the tests that
    run the README's command (no --port) run on different pytest-xdist workers, and each
    needs that port. A lock file every test process sees, released at exit whatever happens."""
    with open(Path("/tmp") / "healthd-tests-port-8080.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class DaemonProcess:
    """`healthd run` as a subprocess, its stderr in a file the test can read."""

    def __init__(self, db_url: str, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        defaults = {
            "HEALTHD_INTERVAL": "1",
            "HEALTHD_RISE": "3",
            "HEALTHD_FALL": "3",
            "HEALTHD_TIMEOUT": "2",
            # next to the log (the test's tmp_path), not in the home directory
            "HEALTHD_SPOOL_DIR": str(log_path.parent / "spool"),
        }
        full = {**os.environ, **defaults, "HEALTHD_DATABASE_URL": db_url, **env}
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "healthd", "run"],
            env=full,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()
        return rc


class Gunicorn:
    """statusapi under a real gunicorn, with the deploy/ configuration."""

    CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"

    def __init__(self, db_url: str, log_path: Path, workers: int = 2, **env: str) -> None:
        from healthd.local.embedded import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {
            **os.environ,
            "STATUSAPI_DATABASE_URL": db_url,
            "STATUSAPI_WORKERS": str(workers),
            "STATUSAPI_ACCESS_LOG": "",
            **env,
        }
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(self.CONF),
                "-b",
                f"127.0.0.1:{self.port}",
                "statusapi:create_app()",
            ],
            env=full,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("gunicorn did not start: " + log_path.read_text()) from None
                time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()


@pytest.fixture
def gunicorn_1w(db_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    """The read-only API under a real gunicorn: one gthread worker of 8 threads (what a
    stream or WebSocket test needs to see one worker's behaviour)."""
    g = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1, STATUSAPI_THREADS="8")
    yield g
    g.stop()


@pytest.fixture
def daemons(db_url: str, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start `healthd run` processes on this test's database; all stopped at the end."""
    started: list[DaemonProcess] = []

    def start(**env: str) -> DaemonProcess:
        d = DaemonProcess(db_url, tmp_path / f"daemon{len(started)}.log", **env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()  # also closes the log of one a test killed itself


@pytest.fixture
def healthd_cli(db_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `healthd` command against this test's database."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "HEALTHD_DATABASE_URL": db_url, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "healthd", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            input=input,
        )

    return run


class _Entry:
    """`healthd.cli.cli_entry` (the one-line error policy around the click group) in the
    shape CliRunner.invoke calls: ``main(args=..., prog_name=...)``."""

    def main(self, args: Any = (), prog_name: str = "healthd", **extra: Any) -> None:
        from healthd.cli import cli_entry

        saved = sys.argv
        sys.argv = [prog_name, *args]
        try:
            cli_entry()
        finally:
            sys.argv = saved


def invoke(
    *args: str, env: dict[str, str | None] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The `healthd` command run in this process through click's CliRunner: the same entry
    point and error policy as the installed script, without a subprocess's start-up.
    HEALTHD_DATABASE_URL is unset unless ``env`` gives it."""
    from click.testing import CliRunner

    full_env: dict[str, str | None] = {"HEALTHD_DATABASE_URL": None, **(env or {})}
    result = CliRunner().invoke(
        _Entry(),  # type: ignore[arg-type]
        list(args),
        env=full_env,
        input=input,
        prog_name="healthd",
        catch_exceptions=False,
    )
    return subprocess.CompletedProcess(
        ["healthd", *args], result.exit_code, result.stdout, result.stderr
    )


@pytest.fixture
def cli(db_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`invoke` against this test's database (in process; see healthd_cli for the real
    command)."""

    def run(
        *args: str, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return invoke(*args, env={"HEALTHD_DATABASE_URL": db_url, **(env or {})}, input=input)

    return run
