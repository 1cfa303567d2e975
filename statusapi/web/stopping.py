"""Whether this worker has been told to stop (gunicorn's SIGTERM at a deploy or a
restart, set by statusapi/web/gunicorn_worker.py): the streams end then, within a second,
a WebSocket with 1001 (going away) and the SSE stream at its end, so that each client
reconnects at once with its last id, and the worker stops in a few seconds instead of
holding every stream to graceful_timeout and cutting it without a word (a browser's
WebSocket saw 1006)."""

from __future__ import annotations

import threading

STOPPING = threading.Event()
