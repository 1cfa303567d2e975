"""Defaults + environment + flags -> one frozen Settings object.

Every reader fails fast with the variable's name, so a typo in an env file is a one-line
error at start-up rather than a surprise at 3 a.m.
"""

from __future__ import annotations

import math
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
    log_format: str = "text"
    tokens: tuple[str, ...] = field(default=(), repr=False)
    ai_source_id: str = "ai-connection"
    history_days: int = 400  # retention of history, rollups and finished deliveries

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("HEALTHD_DATABASE_URL", "is not set (a libpq URL or conninfo string)")
        from healthd import dburl

        return dburl.check(self.database_url, "HEALTHD_DATABASE_URL")


def default_retry(interval: float) -> float:
    return max(1.0, interval / 3)


# Every number healthd takes, from any door (environment, CLI flag, import file, a row
# edited with plain SQL), is finite and within these bounds: a NaN breaks the order of the
# scheduling heap, a negative interval spins, zero divides.
RANGES: dict[str, tuple[type, float, float]] = {
    "interval": (float, 0.1, 86400.0),
    "retry_interval": (float, 0.1, 86400.0),
    "timeout": (float, 0.1, 3600.0),
    "rise": (int, 1, 1000),
    "fall": (int, 1, 1000),
    "concurrency": (int, 1, 100_000),
    "history_days": (int, 1, 36_500),  # timedelta(days=) overflows past 999,999,999
}


def check_number(name: str, value: Any, kind: type, lo: float, hi: float) -> Any:
    """``value`` if it is a finite ``kind`` within [lo, hi]; else ConfigError naming ``name``."""
    word = "a positive integer" if kind is int else "a positive number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int if kind is int else (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or not lo <= value <= hi
    ):
        shown = repr(value)
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        raise ConfigError(name, f"must be {word} from {lo:g} to {hi:g}, got {shown}")
    return kind(value)


def _number(name: str, raw: str, kind: type, attr: str) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"must be a {kind.__name__}, got {raw!r}") from None
    _, lo, hi = RANGES[attr]
    return check_number(name, value, kind, lo, hi)


_ENV: dict[str, tuple[str, Any]] = {
    # env var -> (settings field, parser)
    "HEALTHD_DATABASE_URL": ("database_url", str),
    "STATUSAPI_DATABASE_URL": ("api_database_url", str),
    "HEALTHD_INTERVAL": ("interval", lambda n, v: _number(n, v, float, "interval")),
    "HEALTHD_RISE": ("rise", lambda n, v: _number(n, v, int, "rise")),
    "HEALTHD_FALL": ("fall", lambda n, v: _number(n, v, int, "fall")),
    "HEALTHD_RETRY_INTERVAL": (
        "retry_interval",
        lambda n, v: _number(n, v, float, "retry_interval"),
    ),
    "HEALTHD_TIMEOUT": ("timeout", lambda n, v: _number(n, v, float, "timeout")),
    "HEALTHD_CONCURRENCY": ("concurrency", lambda n, v: _number(n, v, int, "concurrency")),
    "HEALTHD_LOG_FORMAT": ("log_format", str),
    "STATUSAPI_TOKENS": ("tokens", str),
    "STATUSAPI_AI_SOURCE_ID": ("ai_source_id", str),
    "HEALTHD_HISTORY_DAYS": ("history_days", lambda n, v: _number(n, v, int, "history_days")),
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
    for attr, value in flags.items():
        # a CLI flag passes the same checks as its variable (click's float takes "nan")
        if attr in RANGES:
            kind, lo, hi = RANGES[attr]
            flags[attr] = check_number("--" + attr.replace("_", "-"), value, kind, lo, hi)
    if flags:
        settings = replace(settings, **flags)
    if settings.api_database_url is None and settings.database_url:
        settings = replace(settings, api_database_url=settings.database_url)
    return settings
