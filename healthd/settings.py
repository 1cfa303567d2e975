"""Defaults + environment + flags -> one frozen Settings object.

Every reader fails fast with the variable's name, so a typo in an env file is a one-line
error at start-up rather than a surprise at 3 a.m.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from healthd.errors import ConfigError

LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    interval: float = 30.0
    rise: int = 3
    fall: int = 3
    retry_interval: float | None = None  # None: interval / 3, at least 1 s
    timeout: float = 10.0
    concurrency: int = 500
    workers: int = 1  # probe processes under one supervisor (healthd/supervisor.py)
    log_format: str = "text"
    db_timeout: float = 15.0  # the writer's bound on a statement and on a silent network
    spool_dir: str | None = None  # None: $STATE_DIRECTORY, else ~/.local/state/healthd
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


# -- readers: (variable name, raw value) -> typed value, or ConfigError naming the variable.
# statusapi/config.py reads the STATUSAPI_* variables with the same ones.
Reader = Callable[[str, str], Any]


def text(name: str, raw: str) -> str:
    return raw.strip()


def words(name: str, raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks and empty items are dropped."""
    return tuple(t.strip() for t in raw.split(",") if t.strip())


def number(kind: type, minimum: float) -> Reader:
    """An int or a float of at least ``minimum``."""
    return lambda name, raw: _number(name, raw.strip(), kind, minimum)


def choice(options: tuple[str, ...]) -> Reader:
    def read(name: str, raw: str) -> str:
        if raw.strip() not in options:
            raise ConfigError(name, f"must be one of {', '.join(options)}, got {raw!r}")
        return raw.strip()

    return read


def read(table: Mapping[str, tuple[str, Reader]], environ: Mapping[str, str]) -> dict[str, Any]:
    """{field: value} for every variable of ``table`` that is set and not blank."""
    values: dict[str, Any] = {}
    for name, (attr, reader) in table.items():
        raw = environ.get(name)
        if raw is not None and raw.strip() != "":
            values[attr] = reader(name, raw)
    return values


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


_ENV: dict[str, tuple[str, Reader]] = {
    # env var -> (settings field, reader); one line per variable
    "HEALTHD_DATABASE_URL": ("database_url", text),
    "HEALTHD_INTERVAL": ("interval", number(float, 0.1)),
    "HEALTHD_RISE": ("rise", number(int, 1)),
    "HEALTHD_FALL": ("fall", number(int, 1)),
    "HEALTHD_RETRY_INTERVAL": ("retry_interval", number(float, 0.1)),
    "HEALTHD_TIMEOUT": ("timeout", number(float, 0.1)),
    "HEALTHD_CONCURRENCY": ("concurrency", number(int, 1)),
    "HEALTHD_WORKERS": ("workers", workers),
    "HEALTHD_LOG_FORMAT": ("log_format", choice(LOG_FORMATS)),
    "HEALTHD_HISTORY_DAYS": ("history_days", number(int, 1)),
    "HEALTHD_DB_TIMEOUT": ("db_timeout", number(float, 1.0)),
    "HEALTHD_SPOOL_DIR": ("spool_dir", text),
}


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
    settings = Settings(**read(_ENV, env))
    flags = {k: v for k, v in overrides.items() if v is not None}
    if flags:
        settings = replace(settings, **flags)
    return settings
