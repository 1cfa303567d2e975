"""gunicorn settings for statusapi: `gunicorn -c deploy/gunicorn.conf.py 'statusapi:create_app()'`.

Under systemd socket activation (deploy/statusapi.socket) gunicorn takes the listening
socket from LISTEN_FDS and `bind` is not used.
"""

import multiprocessing
import os
import sys

from healthd.config import settings as _readers
from healthd.core.errors import ConfigError as _ConfigError
from statusapi.web import config as _api_config

try:
    # Checked here, in the master, before any worker forks: a bad value stops gunicorn
    # with its one line. (Left to the workers, each prints the line, and several failing
    # at once can make gunicorn's master print a traceback as it halts.)
    _api_config.load()
    _server = _readers.read(_api_config.SERVER, os.environ)
except _ConfigError as _exc:
    sys.exit(str(_exc))

bind = _server.get("bind") or "127.0.0.1:8080"

# Worker class: gthread. Every Server-Sent Events subscriber holds one thread for as long
# as it listens, while ordinary requests keep flowing on the others, and psycopg's
# blocking driver needs no monkey-patching (as gevent would). One tail thread per worker
# feeds all of its subscribers, so the database load does not grow with them.
# Capacity for streams = workers x threads, less what each worker keeps back for ordinary
# requests (the per-worker subscriber cap, statusapi/stream/sse.py, is the thread count
# less an eighth). 512 threads per worker: with the default 4 workers on 2 cores that is
# ~1,790 streams, enough for P8's 1,000 subscribers even though gunicorn's workers do not
# share connections out evenly. An idle thread costs ~10 KB of resident memory.
# statusapi's subclass of gthread only turns gunicorn's own HTML error pages into JSON.
worker_class = "statusapi.web.gunicorn_worker.JsonErrorWorker"
workers = _server.get("workers", min(multiprocessing.cpu_count() * 2, 8))
threads = _server.get("threads", 512)
worker_connections = threads * 2

# Requests gunicorn refuses itself (JSON, by the worker class above): a request line
# over 8190 bytes (gunicorn's maximum; its default is 4094) is a 414, a header line over
# 16 KiB or more than 100 headers a 431, a malformed request line a 400.
limit_request_line = 8190
limit_request_field_size = 16384
limit_request_fields = 100


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    # the app caps its stream subscribers below this worker's thread count
    os.environ["STATUSAPI_THREADS"] = str(worker.cfg.threads)


def when_ready(server):  # type: ignore[no-untyped-def]
    # under systemd with WatchdogSec= (deploy/statusapi.service), the master's loop pings
    # the watchdog while it turns (statusapi/web/watchdog.py); otherwise nothing happens
    from statusapi.web import watchdog

    watchdog.install(server)


timeout = 30  # a worker silent this long is restarted (gthread heartbeats from its main loop)
graceful_timeout = 10  # SIGTERM: streams end within 1 s (WebSocket 1001), requests get this
keepalive = 5

accesslog = os.environ.get("STATUSAPI_ACCESS_LOG", "-") or None  # "" turns it off
# no query string in the log: a token-bearing URL must not end up in the journal
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("STATUSAPI_LOG_LEVEL", "info")
proc_name = "statusapi"

# Request counters summed over the workers (prometheus_client multiprocess mode): the
# directory must exist before a worker imports prometheus_client. Set
# PROMETHEUS_MULTIPROC_DIR to choose it (it is emptied at start); otherwise a private
# temporary one is made and removed on exit. statusapi/web/multiproc.py says more.
from statusapi.web import multiproc  # noqa: E402

multiproc.prepare()
child_exit = multiproc.child_exit
on_exit = multiproc.on_exit
