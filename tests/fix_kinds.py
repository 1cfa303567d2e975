"""Real servers for the redis, mysql, grpc, smtp, tls and ai-service (providers) kinds,
on 127.0.0.1: Debian's redis-server and mariadbd as subprocesses (each in a throwaway
directory, stopped at the end), a grpcio server with the standard health service, an
aiosmtpd server, TLS listeners with certificates made by openssl, and fake model-list
endpoints of Anthropic, Azure OpenAI, Gemini and Ollama. The costly ones (redis, MariaDB)
are session-scoped: one each per test process, started only when a test asks."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from healthd.local.embedded import free_port
from tests.fix_procs import listening, wait_for
from tests.fix_servers import Answer, Request, Scripted, make_cert

# the contract's secret (tests/integration/test_plugins.py): its leak check covers these
SECRET = "sk-very-secret-4242"


def _server_user(preferred: str) -> str | None:
    """Who a database server runs as: ourselves, or under root ``preferred`` (else
    nobody) -- mariadbd refuses root, and the tests run as root in CI."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root with no user to run the server as")


def _private_dir(prefix: str, user: str | None) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    return base


def _as(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


# -- redis ------------------------------------------------------------------------------


class RedisServer:
    """Debian's redis-server with ``requirepass``, no persistence, on a free port."""

    def __init__(self, password: str = SECRET) -> None:
        self.password = password
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="healthd-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, password: str | None = None) -> str:
        return f"redis://:{password or self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # the password through stdin, not argv: a secret on a command line is visible to
        # every user of the machine (and to a test that greps /proc)
        conf = (
            f"port {self.port}\nbind 127.0.0.1\nrequirepass {self.password}\n"
            f'save ""\nappendonly no\ndir {self.dir}\n'
        )
        self.proc = subprocess.Popen(
            ["redis-server", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(conf.encode())
        self.proc.stdin.close()
        wait_for(lambda: listening(self.port), timeout=10, what="redis-server listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = RedisServer()
    yield server
    server.close()


# -- MariaDB ----------------------------------------------------------------------------


class MariaDb:
    """A private mariadbd: its own datadir made by mariadb-install-db, a free port, a
    socket for the root account; a ``healthd`` user whose password is SECRET, allowed to
    read the database ``app``."""

    def __init__(self) -> None:
        self.user = _server_user("mysql")
        self.dir = _private_dir("healthd-mariadb-", self.user)
        self.port = free_port()
        self.socket = self.dir / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(
            _as(
                self.user,
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={self.dir / 'data'}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ],
            ),
            check=True,
            capture_output=True,
            timeout=120,
            cwd="/",
        )
        self.start()
        self.root_sql(
            f"CREATE USER 'healthd'@'%' IDENTIFIED BY '{SECRET}';"
            " CREATE DATABASE app; GRANT SELECT ON app.* TO 'healthd'@'%';"
        )

    def dsn(self, password: str = SECRET, db: str = "app") -> str:
        return f"mysql://healthd:{password}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            _as(
                self.user,
                [
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={self.dir / 'data'}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.socket}",
                    f"--pid-file={self.dir / 'mysqld.pid'}",
                    f"--log-error={self.dir / 'error.log'}",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                    "--innodb-flush-log-at-trx-commit=0",
                ],
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )
        wait_for(
            lambda: listening(self.port) or self.proc is None or self.proc.poll() is not None,
            timeout=60,
            what="mariadbd listening",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("mariadbd did not start: " + self.error_log())

    def error_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "error.log").read_text(errors="replace")[-2000:]
        return ""

    def root_sql(self, sql: str) -> str:
        """Run SQL as the server's administrator, over its socket."""
        # mariadb-install-db gives the OS user who ran it (root, or the one running the
        # tests) a socket login of the same name
        me = "root" if self.user else getpass.getuser()
        done = subprocess.run(
            ["mariadb", "--no-defaults", "-S", str(self.socket), "-u", me, "-N", "-e", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # runuser passes it on; mariadbd shuts down cleanly
            self.proc.wait(60)
        self.proc = None
        wait_for(lambda: not listening(self.port), timeout=30, what="mariadbd stopped")

    def close(self) -> None:
        # the data is thrown away: SIGKILL to mariadbd itself (runuser would not pass a
        # SIGKILL on), not two seconds of clean shutdown
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.dir / "mysqld.pid").read_text()), signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDb]:
    if not (shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()):
        pytest.skip("mariadb-server is not installed (.ci/run installs it)")
    server = MariaDb()
    yield server
    server.close()


# -- gRPC -------------------------------------------------------------------------------


class GrpcHealthServer:
    """grpcio's server with the standard health service: the server SERVING, the named
    service ``billing`` NOT_SERVING, any other name unknown."""

    def __init__(self) -> None:
        from concurrent import futures

        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set("billing", health_pb2.HealthCheckResponse.NOT_SERVING)
        self.target = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.stop(0).wait(5)


@pytest.fixture(scope="session")
def grpc_server() -> Iterator[GrpcHealthServer]:
    server = GrpcHealthServer()
    yield server
    server.close()


# -- SMTP -------------------------------------------------------------------------------


class SmtpServers:
    """aiosmtpd on a free port (plain, and one offering STARTTLS with a certificate for
    127.0.0.1), and a relay that greets with 554."""

    def __init__(self, directory: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Sink

        self.cert, key = make_cert(directory, days=30)
        self.plain = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        self.plain.start()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.cert, key)
        self.starttls = Controller(
            Sink(), hostname="127.0.0.1", port=free_port(), tls_context=tls, require_starttls=False
        )
        self.starttls.start()
        self.refusing_port, self._stop_refusing = _greeting_server(b"554 5.3.2 no service here\r\n")

    def close(self) -> None:
        self.plain.stop()
        self.starttls.stop()
        self._stop_refusing()


def _greeting_server(greeting: bytes) -> tuple[int, Any]:
    """A TCP server that answers every connection with ``greeting`` and closes it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with conn, contextlib.suppress(OSError):
                conn.sendall(greeting)

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close() -> None:
        stop.set()
        t.join()
        srv.close()

    return srv.getsockname()[1], close


@pytest.fixture(scope="session")
def smtp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServers]:
    servers = SmtpServers(tmp_path_factory.mktemp("smtp"))
    yield servers
    servers.close()


# -- TLS --------------------------------------------------------------------------------


def make_cert_between(directory: Path, start: str, end: str, name: str = "IP:127.0.0.1") -> Path:
    """A self-signed certificate (cert and key in one PEM) for ``name`` (a subjectAltName)
    valid from ``start`` to ``end`` (YYYYMMDDHHMMSSZ): `openssl ca`, since `openssl req`
    of OpenSSL 3.0 cannot backdate."""
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n"
        "[p]\ncommonName = supplied\n"
    )

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, cwd=directory, timeout=60)

    run(
        "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
        "-out", "req.csr", "-subj", f"/CN={name[3:]}", "-addext", f"subjectAltName={name}",
    )  # fmt: skip
    run(
        "openssl", "ca", "-batch", "-selfsign", "-config", "ca.cnf", "-keyfile", "key.pem",
        "-in", "req.csr", "-out", "cert.pem", "-startdate", start, "-enddate", end, "-notext",
    )  # fmt: skip
    both = directory / "both.pem"
    both.write_text((directory / "cert.pem").read_text() + (directory / "key.pem").read_text())
    return both


class TlsListener:
    """A TLS server on 127.0.0.1 that completes handshakes with ``cert`` and closes."""

    def __init__(self, cert: Path, key: Path | None = None) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop_flag.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(2)
            # a failed handshake (the client refusing the certificate) is the point of
            # some tests, not a server fault
            with contextlib.suppress(OSError), self.ctx.wrap_socket(conn, server_side=True):
                pass

    def close(self) -> None:
        self.stop_flag.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="session")
def tls_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Listeners whose certificates expire in 5 and in 60 days, one expired, one for
    another name; each certificate is its own CA file."""
    made: dict[str, Any] = {}
    listeners = []
    for label, days in (("five", 5), ("sixty", 60)):
        cert, key = make_cert(tmp_path_factory.mktemp(f"tls-{label}"), days=days)
        listeners.append(TlsListener(cert, key))
        made[label] = (listeners[-1].port, cert)
    expired = make_cert_between(
        tmp_path_factory.mktemp("tls-expired"), "20200101000000Z", "20200201000000Z"
    )
    listeners.append(TlsListener(expired))
    made["expired"] = (listeners[-1].port, expired)
    other = make_cert_between(
        tmp_path_factory.mktemp("tls-other"),
        "20200101000000Z",
        "20491231000000Z",
        "DNS:other.invalid",
    )
    listeners.append(TlsListener(other))
    made["other_name"] = (listeners[-1].port, other)
    yield made
    for listener in listeners:
        listener.close()


# -- AI providers -----------------------------------------------------------------------


class FakeProviders(Scripted):
    """One HTTP server answering as four providers' model lists do, each checking its key
    its own way: /anthropic/v1 (x-api-key, anthropic-version), /azure (api-key,
    api-version), /gemini/v1beta (x-goog-api-key; a bad key is a 400), /ollama (no key)
    and /ollama-proxied (a Bearer key, as a proxy in front of Ollama would ask)."""

    def __init__(self, key: str = SECRET) -> None:
        self.key = key
        super().__init__(self._json)
        self.seen = self.requests  # each request's path and (lowercased) headers

    def _json(self, req: Request) -> Answer:
        parts = urlsplit(req.path)
        code, body = self.answer(parts.path, parse_qs(parts.query), req.headers)
        return code, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def answer(self, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, Any]:
        if path == "/anthropic/v1/models":
            if headers.get("x-api-key") != self.key:
                return 401, {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                }
            if not headers.get("anthropic-version"):
                return 400, {"type": "error", "error": {"message": "anthropic-version missing"}}
            models = [{"type": "model", "id": m} for m in ("claude-test-1", "claude-test-2")]
            return 200, {"data": models, "has_more": False}
        if path == "/azure/openai/deployments":
            if headers.get("api-key") != self.key:
                return 401, {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key",
                    }
                }
            if not query.get("api-version"):
                return 404, {"error": {"code": "404", "message": "Resource not found"}}
            return 200, {
                "object": "list",
                "data": [{"id": "chat-prod", "model": "gpt-4o", "status": "succeeded"}],
            }
        if path == "/gemini/v1beta/models":
            if headers.get("x-goog-api-key") != self.key:
                return 400, {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                            }
                        ],
                    }
                }
            return 200, {"models": [{"name": "models/gemini-test-flash"}]}
        if path in ("/ollama/api/tags", "/ollama-proxied/api/tags"):
            if path.startswith("/ollama-proxied") and headers.get("authorization") != (
                f"Bearer {self.key}"
            ):
                return 401, {"error": "unauthorized"}
            return 200, {"models": [{"name": "llama-test:latest", "model": "llama-test:latest"}]}
        return 404, {"error": {"message": "not found"}}


@pytest.fixture(scope="session")
def providers() -> Iterator[FakeProviders]:
    fake = FakeProviders()
    yield fake
    fake.close()


# -- the plugin contract's cases for these kinds ----------------------------------------

NEW_KINDS = ("redis", "mysql", "grpc", "smtp", "tls")


def contract_cases(
    name: str, request: pytest.FixtureRequest, closed: int, hang: int
) -> dict[str, dict[str, Any]]:
    """For tests/integration/test_plugins.py's contract: the configs of kind ``name``
    that reach it, cannot reach it (the ``closed`` port), and hang (``hang`` accepts and
    never answers); {} for another kind. Servers are started only for the kind asked."""
    if name not in NEW_KINDS:
        return {}
    local = "127.0.0.1"
    if name == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return {
            "good": {"url": redis.url()},
            "unreachable": {"url": f"redis://:{SECRET}@{local}:{closed}/0"},
            "hang": {"url": f"redis://{local}:{hang}/0", "password": SECRET},
        }
    if name == "mysql":
        db: MariaDb = request.getfixturevalue("mariadb")
        return {
            "good": {"dsn": db.dsn()},
            "unreachable": {"dsn": f"mysql://healthd:{SECRET}@{local}:{closed}/app"},
            "hang": {"dsn": f"mysql://healthd:{SECRET}@{local}:{hang}/app"},
        }
    if name == "grpc":
        grpc: GrpcHealthServer = request.getfixturevalue("grpc_server")
        return {
            "good": {"target": grpc.target},
            "unreachable": {"target": f"{local}:{closed}"},
            "hang": {"target": f"{local}:{hang}"},
        }
    if name == "smtp":
        smtp: SmtpServers = request.getfixturevalue("smtp_servers")
        return {
            "good": {"host": local, "port": smtp.plain.port},
            "unreachable": {"host": local, "port": closed},
            "hang": {"host": local, "port": hang},
        }
    tls = request.getfixturevalue("tls_servers")
    port, cert = tls["sixty"]
    return {
        "good": {"host": local, "port": port, "ca_file": str(cert)},
        "unreachable": {"host": local, "port": closed},
        "hang": {"host": local, "port": hang},
    }
