"""The API's settings, from the environment (the same typed readers as the daemon's)."""

from __future__ import annotations

import os
from typing import Any

from healthd import settings
from healthd.errors import ConfigError


def from_env() -> dict[str, Any]:
    s = settings.load()
    origins = os.environ.get("STATUSAPI_CORS_ORIGINS", "")
    return {
        "DATABASE_URL": s.api_database_url,
        "TOKENS": s.tokens,
        "AI_SOURCE_ID": s.ai_source_id,
        "DEFAULT_RISE": s.rise,
        "DEFAULT_FALL": s.fall,
        "CORS_ORIGINS": tuple(o.strip() for o in origins.split(",") if o.strip()),
        # a daemon heartbeat older than this makes /readyz answer 503
        "HEARTBEAT_MAX_AGE": float(os.environ.get("STATUSAPI_HEARTBEAT_MAX_AGE", "30")),
        "POOL_MAX": int(os.environ.get("STATUSAPI_POOL_MAX", "8")),
        "STREAM_POLL": float(os.environ.get("STATUSAPI_STREAM_POLL", "0.1")),
        "STREAM_KEEPALIVE": float(os.environ.get("STATUSAPI_STREAM_KEEPALIVE", "15")),
        "STREAM_MAX": stream_max(),
    }


def stream_max() -> int:
    """Stream subscribers per worker: STATUSAPI_STREAM_MAX, else fewer than the worker's
    threads (gunicorn.conf.py exports its count) by an eighth, at least two, so streams
    can never take every thread and /healthz always answers."""
    explicit = os.environ.get("STATUSAPI_STREAM_MAX", "").strip()
    if explicit:
        return _count("STATUSAPI_STREAM_MAX", explicit)
    threads = _count("STATUSAPI_THREADS", os.environ.get("STATUSAPI_THREADS", "").strip() or "256")
    return max(0, threads - max(2, threads // 8))


def _count(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    return int(settings.check_number(name, value, int, 0, 100_000))
