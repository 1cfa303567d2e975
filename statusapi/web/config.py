"""The API's settings: the STATUSAPI_* variables, read by the daemon's typed readers.

A bad value fails app creation with one line naming the variable. Under gunicorn that
line is all the operator sees: the error is also gunicorn's AppImportError, which its
worker prints without a traceback before the master stops (exit code 4).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gunicorn.errors import AppImportError

from healthd.config import settings
from healthd.config.settings import Var, number, text, words
from healthd.core.errors import ConfigError


@dataclass(frozen=True)
class ApiSettings:
    database_url: str | None = None  # None: HEALTHD_DATABASE_URL
    tokens: tuple[str, ...] = field(default=(), repr=False)
    ai_source_id: str = "ai-connection"
    cors_origins: tuple[str, ...] = ()
    # a daemon heartbeat older than this makes /readyz answer 503
    heartbeat_max_age: float = 30.0
    pool_max: int = 8
    stream_poll: float = 0.1
    stream_keepalive: float = 15.0
    # SSE subscribers per worker (None: derived from the worker's threads, below them)
    stream_max: int | None = None
    threads: int = 256  # the worker's threads; gunicorn.conf.py's post_fork exports them
    # sources with series of their own on /metrics (the first ones by id; 0: none)
    metrics_max_sources: int = 10_000
    # the daemon's defaults, for a source's "pending.needed" (HEALTHD_RISE / HEALTHD_FALL)
    default_rise: int = 3
    default_fall: int = 3


TOKENS_VAR = "STATUSAPI_TOKENS"
_ENV: dict[str, Var] = {
    # env var -> (ApiSettings field, reader, meaning); one line per variable
    "STATUSAPI_DATABASE_URL": Var(
        "database_url",
        text,
        "the API's connection (default: HEALTHD_DATABASE_URL); the read-only role or a standby",
    ),
    TOKENS_VAR: Var(
        "tokens",
        words,
        "comma-separated bearer tokens; when set, every route but /healthz needs one"
        "; set but holding none (empty, blanks, commas) it stops the API at start",
    ),
    "STATUSAPI_AI_SOURCE_ID": Var("ai_source_id", text, "the source behind the /api/ai/* routes"),
    "STATUSAPI_CORS_ORIGINS": Var(
        "cors_origins", words, "comma-separated origins (or `*`) allowed to read the API"
    ),
    "STATUSAPI_HEARTBEAT_MAX_AGE": Var(
        "heartbeat_max_age",
        number(float, 0.1),
        "/readyz answers 503 when the freshest daemon heartbeat is older, seconds",
    ),
    "STATUSAPI_POOL_MAX": Var("pool_max", number(int, 1), "database connections per API worker"),
    "STATUSAPI_STREAM_POLL": Var(
        "stream_poll", number(float, 0.01), "how often the stream tails the history, seconds"
    ),
    "STATUSAPI_STREAM_KEEPALIVE": Var(
        "stream_keepalive", number(float, 0.1), "seconds between the stream's keep-alive comments"
    ),
    "STATUSAPI_STREAM_MAX": Var(
        "stream_max",
        number(int, 0, 100_000),
        "stream subscribers per worker; past it the stream answers 503"
        " (default: threads - max(2, threads / 8))",
    ),
    "STATUSAPI_THREADS": Var(
        "threads", number(int, 1, 100_000), "threads per gunicorn worker (each stream holds one)"
    ),
    "STATUSAPI_METRICS_MAX_SOURCES": Var(
        "metrics_max_sources",
        number(int, 0, 10_000_000),
        "sources with per-source series on /metrics (0: none); past it one gauge says so",
    ),
}
VARIABLES = _ENV  # the documented table (docs/generate.py)

# read by deploy/gunicorn.conf.py, in gunicorn's master, before the app exists
SERVER: dict[str, Var] = {
    "STATUSAPI_BIND": Var("bind", text, "address gunicorn listens on (default 127.0.0.1:8080)"),
    "STATUSAPI_WORKERS": Var(
        "workers", number(int, 1), "gunicorn workers (default: 2 x CPUs, at most 8)"
    ),
    "STATUSAPI_THREADS": Var(
        "threads",
        number(int, 1),
        "threads per gunicorn worker, each stream holds one (default 512)",
    ),
}


class BadSetting(ConfigError, AppImportError):  # type: ignore[misc]  # gunicorn is untyped
    """A bad setting, as a ConfigError and as the error gunicorn reports in one line."""


def load(environ: Mapping[str, str] | None = None) -> ApiSettings:
    """The API's settings from the environment. Raises BadSetting naming the variable."""
    env = os.environ if environ is None else environ
    try:
        daemon = settings.load(env)
        api = ApiSettings(**settings.read(_ENV, env))
        _tokens_given(env)
    except ConfigError as exc:
        raise BadSetting(exc.field, exc.problem, exc.where) from None
    return replace(
        api,
        database_url=api.database_url or daemon.database_url,
        default_rise=daemon.rise,
        default_fall=daemon.fall,
    )


def _tokens_given(env: Mapping[str, str]) -> None:
    """STATUSAPI_TOKENS set to blanks or commas only is refused, not read as unset: the
    operator meant to require tokens (a template whose value came out empty, a stray
    comma), and serving every route to anyone would be the quiet failure. The other
    variables take a blank value for "unset"; this one fails closed."""
    raw = env.get(TOKENS_VAR)
    if raw is not None and not words(TOKENS_VAR, raw):
        raise ConfigError(
            TOKENS_VAR,
            "is set but holds no token; give comma-separated tokens, or unset it to serve"
            " without authentication",
        )


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask config the views read."""
    s = load(environ)
    return {
        "DATABASE_URL": s.database_url,
        "TOKENS": s.tokens,
        "AI_SOURCE_ID": s.ai_source_id,
        "DEFAULT_RISE": s.default_rise,
        "DEFAULT_FALL": s.default_fall,
        "CORS_ORIGINS": s.cors_origins,
        "HEARTBEAT_MAX_AGE": s.heartbeat_max_age,
        "POOL_MAX": s.pool_max,
        "STREAM_POLL": s.stream_poll,
        "STREAM_KEEPALIVE": s.stream_keepalive,
        "STREAM_MAX": s.stream_max if s.stream_max is not None else stream_cap(s.threads),
        "METRICS_MAX_SOURCES": s.metrics_max_sources,
    }


def stream_cap(threads: int) -> int:
    """Stream subscribers per worker when STATUSAPI_STREAM_MAX is not set: fewer than the
    worker's threads (gunicorn.conf.py exports its count) by an eighth, at least two, so
    streams can never take every thread and /healthz always answers."""
    return max(0, threads - max(2, threads // 8))
