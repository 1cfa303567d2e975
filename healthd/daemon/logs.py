"""Logging for the entry points (the library modules only use named loggers)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from healthd.core.text import visible


class TextFormatter(logging.Formatter):
    """Each record on one line, inert on a terminal: a control character in a message (a
    target's answer, a source id written with SQL) is shown as its escape. A traceback
    appended after the message keeps its lines. JSON escapes control characters itself."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return visible(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("source_id", "event", "from_status", "to_status"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        # journald adds its own timestamps; a terminal user still wants them
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO, and every skipped run of a job still in
    # flight at WARNING (four times a second when overloaded); the daemon's own summary
    # line reports falling behind instead
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
