"""`healthd up`: everything in the foreground for a first try.

An embedded PostgreSQL (unless HEALTHD_DATABASE_URL is set), the migrations, example
sources that work offline, the daemon and the API under gunicorn. Ctrl-C stops the API,
then the daemon, then PostgreSQL, and leaves no process behind.

Where the cluster lives: --data-dir if given; else ./.healthd; but as root (where the
server runs as the ``postgres`` user, who cannot enter a private checkout such as one
under /root) a directory of its own per working directory under /var/lib/healthd/embedded/.
Either way it is reused by the next run from the same place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from healthd.config.settings import Settings
from healthd.config.sources import validate_all
from healthd.core.errors import HealthdError
from healthd.daemon import logs
from healthd.local import embedded
from healthd.store import catalog, migrate

log = logging.getLogger("healthd.local.up")
UP_THREADS = 32
DBNAME = "healthd"
ROOT_BASE = Path("/var/lib/healthd/embedded")
# The server listens on a private unix socket only, so the port number just names the
# socket: a fixed one keeps the printed URL (and the example source's dsn) the same
# from run to run.
PG_PORT = 5432
# A local model server's OpenAI-compatible API (Ollama's default address): connected when
# one runs, disconnected otherwise.
LOCAL_AI_ENDPOINT = "http://127.0.0.1:11434/v1"


def data_dir_for(explicit: Path | None, cwd: Path, euid: int) -> Path:
    """The cluster's directory (see the module docstring)."""
    if explicit is not None:
        return explicit
    here = cwd / ".healthd"
    if euid != 0 or _earlier_root_cluster(here):
        return here
    key = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in cwd.resolve().name)
    return ROOT_BASE / f"{name or 'root'}-{key}"


def _earlier_root_cluster(here: Path) -> bool:
    """./.healthd holds a cluster an earlier run as root made (the server's user owns it),
    so it is reused where it is; one a non-root user made is left alone."""
    try:
        server = pwd.getpwnam(embedded.server_user() or "")
        return (here / "data" / "PG_VERSION").stat().st_uid == server.pw_uid
    except (OSError, KeyError, HealthdError):
        return False


def examples(api: str, db_url: str) -> list[dict[str, object]]:
    return [
        {
            "id": "statusapi",
            "name": "This status API",
            "type": "service",
            "plugin": "http",
            "config": {"url": f"{api}/healthz"},
        },
        {
            "id": "embedded-postgres",
            "name": "The embedded PostgreSQL",
            "type": "database",
            "plugin": "postgres",
            "config": {"dsn": db_url},
        },
        {
            "id": "ai-connection",
            "name": "A local model server (OpenAI-compatible, e.g. Ollama)",
            "type": "ai",
            "plugin": "ai-service",
            # a local server takes any key; Ollama's own examples pass "ollama"
            "config": {"endpoint": LOCAL_AI_ENDPOINT, "api_key": "ollama"},
        },
        {
            "id": "closed-port",
            "name": "A port nobody listens on (fails on purpose)",
            "type": "service",
            "plugin": "tcp",
            "config": {"host": "127.0.0.1", "port": 1},
        },
    ]


def _make_reachable_dirs(path: Path) -> list[Path]:
    """Create the missing directories of ``path`` traversable by everyone (whatever the
    umask), so the postgres user reaches the cluster; existing ones are left as they are.
    The ones made, outermost first."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir(exist_ok=True)
        os.chmod(p, 0o755)
    return missing[::-1]


def _boot(cluster: embedded.Cluster, made: list[Path]) -> None:
    """Boot the cluster; when its first boot fails, the directories made for it go again
    (a later run must not find a half-made cluster, nor an empty directory)."""
    try:
        cluster.boot()
    except BaseException:
        if made:  # made[-1] is the cluster's own directory: it did not exist before
            cluster.stop("immediate")
            shutil.rmtree(made[-1], ignore_errors=True)
            for p in reversed(made[:-1]):
                with contextlib.suppress(OSError):
                    p.rmdir()  # only while empty
        raise


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _stop(proc: subprocess.Popen[bytes] | None, name: str, grace: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %g s; killing it", name, grace)
        proc.kill()
        proc.wait()


def main(settings: Settings, data_dir: Path | None, host: str, port: int) -> int:
    logs.setup(settings.log_format)
    from statusapi.web import config as api_config

    try:
        api_config.load()  # a bad STATUSAPI_* value: one line now, before anything starts
    except HealthdError as exc:
        log.error("%s", exc)
        return 1
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if not _port_free(host, port):
        log.error("%s:%d is already in use; choose another with --port", host, port)
        return 1
    cluster: embedded.Cluster | None = None
    daemon = api = None
    metrics_dir = ""
    try:
        if settings.database_url:
            url = settings.database_url
        else:
            where = data_dir_for(data_dir, Path.cwd(), os.geteuid())
            # finds the server binaries first: with none, one line and nothing made
            cluster = embedded.Cluster(where, port=PG_PORT, tcp=False)
            log.info(
                "%s the embedded PostgreSQL in %s (server binaries: %s)",
                "reusing" if cluster.initialized else "creating",
                cluster.base_dir,
                cluster.bindir,
            )
            made = _make_reachable_dirs(where.parent) if where.is_relative_to(ROOT_BASE) else []
            if not where.exists():
                made.append(where)
            _boot(cluster, made)
            embedded.ensure_database(cluster.url(), DBNAME)
            url = cluster.url(DBNAME)
        migrate.apply(url)
        api_base = f"http://{host}:{port}"
        if not catalog.list_sources(url):
            catalog.import_sources(url, validate_all(examples(api_base, url)), prune=False)
            log.info("loaded the example sources")
        env = {**os.environ, "HEALTHD_DATABASE_URL": url, "STATUSAPI_DATABASE_URL": url}
        overrides = {
            "HEALTHD_INTERVAL": settings.interval,
            "HEALTHD_RISE": settings.rise,
            "HEALTHD_FALL": settings.fall,
            "HEALTHD_TIMEOUT": settings.timeout,
            "HEALTHD_LOG_FORMAT": settings.log_format,
        }
        env.update({k: str(v) for k, v in overrides.items()})
        env["STATUSAPI_THREADS"] = str(UP_THREADS)  # the stream cap stays below it
        daemon = subprocess.Popen(
            [sys.executable, "-m", "healthd", "run"], env=env, start_new_session=True
        )
        # request counters summed over the two workers (statusapi/web/multiproc.py)
        metrics_dir = tempfile.mkdtemp(prefix="healthd-up-metrics-")
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--worker-class",
                "statusapi.web.gunicorn_worker.JsonErrorWorker",  # gthread, JSON errors
                "--workers",
                "2",
                "--threads",
                str(UP_THREADS),
                "--limit-request-line",
                "8190",
                "--bind",
                f"{host}:{port}",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                "statusapi:create_app()",
            ],
            env={**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
            start_new_session=True,
        )
        kept = f"  data:     {cluster.base_dir} (kept; the next run reuses it)\n" if cluster else ""
        sys.stdout.write(
            f"\nhealthd is up.\n  page:     {api_base}/status\n"
            f"  API:      {api_base}/api/v1/sources\n"
            f"  summary:  {api_base}/api/v1/summary\n  stream:   {api_base}/api/v1/stream\n"
            f"  AI:       {api_base}/api/ai/connection-status\n"
            f"  metrics:  {api_base}/metrics\n  database: {url}\n{kept}"
            f"  status:   HEALTHD_DATABASE_URL={shlex.quote(url)} healthd status\n"
            "Press Ctrl-C to stop.\n\n"
        )
        sys.stdout.flush()
        while not stop_requested:
            for proc, name in ((daemon, "the daemon"), (api, "the API")):
                if proc.poll() is not None:
                    log.error("%s exited with code %s; stopping everything", name, proc.returncode)
                    return 1
            time.sleep(0.2)
        return 0
    except HealthdError as exc:
        log.error("%s", exc)
        return 1
    finally:
        # nothing to report when nothing was started (no server binaries, say)
        started = api is not None or daemon is not None or (cluster is not None and cluster.up)
        if started:
            log.info("stopping the API, the daemon and PostgreSQL")
        _stop(api, "the API")
        _stop(daemon, "the daemon")
        if cluster is not None and cluster.up:
            with contextlib.suppress(Exception):
                cluster.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if started:
            log.info("all stopped")
