"""Defaults + environment + flags -> one frozen Settings object.

Every reader fails fast with the variable's name, so a typo in an env file is a one-line
error at start-up rather than a surprise at 3 a.m.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from healthd.errors import ConfigError

LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    api_database_url: str | None = None
    interval: float = 30.0
    rise: int = 3
    fall: int = 3
    retry_interval: float | None = None  # None: interval / 3, at least 1 s
    timeout: float = 10.0
    concurrency: int = 500
    workers: int = 1  # probe processes under one supervisor (healthd/supervisor.py)
    log_format: str = "text"
    tokens: tuple[str, ...] = field(default=(), repr=False)
    ai_source_id: str = "ai-connection"
    history_days: int = 400  # retention of history, rollups and finished deliveries

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("HEALTHD_DATABASE_URL", "is not set (a libpq URL or conninfo string)")
        return self.database_url


def default_retry(interval: float) -> float:
    return max(1.0, interval / 3)


def _number(name: str, raw: str, kind: type, minimum: float) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"must be a {kind.__name__}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {raw!r}")
    return value


def workers(name: str, raw: str) -> int:
    """A worker count: a positive integer, or ``auto`` for one per usable core."""
    if raw.strip().lower() == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a positive integer or auto, got {raw!r}") from None
    if value < 1:
        raise ConfigError(name, f"must be a positive integer or auto, got {raw!r}")
    return value


_ENV: dict[str, tuple[str, Any]] = {
    # env var -> (settings field, parser)
    "HEALTHD_DATABASE_URL": ("database_url", str),
    "STATUSAPI_DATABASE_URL": ("api_database_url", str),
    "HEALTHD_INTERVAL": ("interval", lambda n, v: _number(n, v, float, 0.1)),
    "HEALTHD_RISE": ("rise", lambda n, v: _number(n, v, int, 1)),
    "HEALTHD_FALL": ("fall", lambda n, v: _number(n, v, int, 1)),
    "HEALTHD_RETRY_INTERVAL": ("retry_interval", lambda n, v: _number(n, v, float, 0.1)),
    "HEALTHD_TIMEOUT": ("timeout", lambda n, v: _number(n, v, float, 0.1)),
    "HEALTHD_CONCURRENCY": ("concurrency", lambda n, v: _number(n, v, int, 1)),
    "HEALTHD_WORKERS": ("workers", workers),
    "HEALTHD_LOG_FORMAT": ("log_format", str),
    "STATUSAPI_TOKENS": ("tokens", str),
    "STATUSAPI_AI_SOURCE_ID": ("ai_source_id", str),
    "HEALTHD_HISTORY_DAYS": ("history_days", lambda n, v: _number(n, v, int, 1)),
}


def _parse(name: str, raw: str) -> Any:
    attr, parser = _ENV[name]
    if parser is str:
        value: Any = raw.strip()
    else:
        value = parser(name, raw.strip())
    if attr == "tokens":
        value = tuple(t.strip() for t in raw.split(",") if t.strip())
    if attr == "log_format" and value not in LOG_FORMATS:
        raise ConfigError(name, f"must be one of {', '.join(LOG_FORMATS)}, got {raw!r}")
    return value


def to_environ(settings: Settings) -> dict[str, str]:
    """The daemon's settings as the HEALTHD_* variables that reproduce them (for the
    supervisor's workers, which must see the flags given to the supervisor)."""
    out: dict[str, str] = {}
    for name, (attr, _) in _ENV.items():
        value = getattr(settings, attr)
        if name.startswith("HEALTHD_") and value is not None:
            out[name] = repr(value) if isinstance(value, float) else str(value)
    return out


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, then apply non-None overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (attr, _) in _ENV.items():
        raw = env.get(name)
        if raw is not None and raw.strip() != "":
            values[attr] = _parse(name, raw)
    settings = Settings(**values)
    flags = {k: v for k, v in overrides.items() if v is not None}
    if flags:
        settings = replace(settings, **flags)
    if settings.api_database_url is None and settings.database_url:
        settings = replace(settings, api_database_url=settings.database_url)
    return settings
