"""gunicorn settings for statusapi: `gunicorn -c deploy/gunicorn.conf.py 'statusapi:create_app()'`.

Under systemd socket activation (deploy/statusapi.socket) gunicorn takes the listening
socket from LISTEN_FDS and `bind` is not used.
"""

import multiprocessing
import os
import sys

from healthd import settings as _readers
from healthd.errors import ConfigError as _ConfigError
from statusapi import config as _api_config

_SERVER_ENV = {
    # env var -> (name here, reader); one line per variable
    "STATUSAPI_WORKERS": ("workers", _readers.number(int, 1)),
    "STATUSAPI_THREADS": ("threads", _readers.number(int, 1)),
}
try:
    # Checked here, in the master, before any worker forks: a bad value stops gunicorn
    # with its one line. (Left to the workers, each prints the line, and several failing
    # at once can make gunicorn's master print a traceback as it halts.)
    _api_config.load()
    _server = _readers.read(_SERVER_ENV, os.environ)
except _ConfigError as _exc:
    sys.exit(str(_exc))

bind = os.environ.get("STATUSAPI_BIND", "127.0.0.1:8080")

# Worker class: gthread. Every Server-Sent Events subscriber holds one thread for as long
# as it listens, while ordinary requests keep flowing on the others, and psycopg's
# blocking driver needs no monkey-patching (as gevent would). One tail thread per worker
# feeds all of its subscribers, so the database load does not grow with them.
# Capacity for streams = workers x threads; raise STATUSAPI_THREADS for more subscribers.
# statusapi's subclass of gthread only turns gunicorn's own HTML error pages into JSON.
worker_class = "statusapi.gunicorn_worker.JsonErrorWorker"
workers = _server.get("workers", min(multiprocessing.cpu_count() * 2, 8))
threads = _server.get("threads", 256)
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


timeout = 30  # a worker silent this long is restarted (gthread heartbeats from its main loop)
graceful_timeout = 10  # SIGTERM: streams are cut after this; clients resume with Last-Event-ID
keepalive = 5

accesslog = os.environ.get("STATUSAPI_ACCESS_LOG", "-") or None  # "" turns it off
# no query string in the log: a token-bearing URL must not end up in the journal
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("STATUSAPI_LOG_LEVEL", "info")
proc_name = "statusapi"
