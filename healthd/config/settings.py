"""Defaults + environment + flags -> one frozen Settings object.

Every reader fails fast with the variable's name, so a typo in an env file is a one-line
error at start-up rather than a surprise at 3 a.m.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from healthd.core.errors import ConfigError

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
    workers: int = 1  # probe processes under one supervisor (healthd/daemon/supervisor.py)
    log_format: str = "text"
    db_timeout: float = 15.0  # the writer's bound on a statement and on a silent network
    spool_dir: str | None = None  # None: $STATE_DIRECTORY, else ~/.local/state/healthd
    history_days: int = 400  # retention of history, rollups and finished deliveries
    public_url: str | None = None  # the status page's address, linked from notifications

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("HEALTHD_DATABASE_URL", "is not set (a libpq URL or conninfo string)")
        from healthd.core import dburl

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
    "db_timeout": (float, 1.0, 3600.0),
}


def check_number(
    name: str, value: Any, kind: type, lo: float, hi: float = math.inf, raw: str | None = None
) -> Any:
    """``value`` if it is a finite ``kind`` within [lo, hi]; else ConfigError naming ``name``
    (and quoting ``raw``, the text it was read from, when there was one)."""
    word = "a positive integer" if kind is int else "a positive number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int if kind is int else (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or not lo <= value <= hi
    ):
        shown = repr(value if raw is None else raw)
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        bounds = f"from {lo:g} to {hi:g}" if math.isfinite(hi) else f"of at least {lo:g}"
        raise ConfigError(name, f"must be {word} {bounds}, got {shown}")
    return kind(value)


def _number(name: str, raw: str, kind: type, lo: float, hi: float) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"must be a {kind.__name__}, got {raw!r}") from None
    return check_number(name, value, kind, lo, hi, raw)


# -- readers: (variable name, raw value) -> typed value, or ConfigError naming the variable.
# statusapi/web/config.py reads the STATUSAPI_* variables with the same ones.
Reader = Callable[[str, str], Any]


def text(name: str, raw: str) -> str:
    return raw.strip()


def words(name: str, raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks and empty items are dropped."""
    return tuple(t.strip() for t in raw.split(",") if t.strip())


def number(kind: type, minimum: float, maximum: float = math.inf) -> Reader:
    """A finite int or float from ``minimum`` to ``maximum`` (NaN and infinities refused)."""
    return lambda name, raw: _number(name, raw.strip(), kind, minimum, maximum)


def bounded(attr: str) -> Reader:
    """The reader of a setting with bounds in RANGES."""
    kind, lo, hi = RANGES[attr]
    return number(kind, lo, hi)


def choice(options: tuple[str, ...]) -> Reader:
    def read(name: str, raw: str) -> str:
        if raw.strip() not in options:
            raise ConfigError(name, f"must be one of {', '.join(options)}, got {raw!r}")
        return raw.strip()

    return read


class Var(NamedTuple):
    """One environment variable: the settings field it sets, its reader, and what it means
    (docs/configuration.md's table is generated from these, by docs/generate.py)."""

    attr: str
    reader: Reader
    help: str = ""


def read(table: Mapping[str, tuple[Any, ...]], environ: Mapping[str, str]) -> dict[str, Any]:
    """{field: value} for every variable of ``table`` that is set and not blank."""
    values: dict[str, Any] = {}
    for name, entry in table.items():
        attr, reader = entry[0], entry[1]
        raw = environ.get(name)
        if raw is not None and raw.strip() != "":
            values[attr] = reader(name, raw)
    return values


def http_url(name: str, raw: str) -> str:
    """An http(s) URL a person opens (no trailing slash)."""
    url = raw.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if (
        scheme.lower() not in ("http", "https")
        or not sep
        or not rest
        or any(c.isspace() for c in url)
    ):
        raise ConfigError(name, f"must be an http:// or https:// URL, got {raw[:40]!r}")
    return url


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


_ENV: dict[str, Var] = {
    # env var -> (settings field, reader, meaning); one line per variable
    "HEALTHD_DATABASE_URL": Var(
        "database_url", text, "libpq URL or conninfo for the daemon and the CLI (required)"
    ),
    "HEALTHD_INTERVAL": Var("interval", bounded("interval"), "seconds between probes of a source"),
    "HEALTHD_RISE": Var("rise", bounded("rise"), "consecutive successes to become connected"),
    "HEALTHD_FALL": Var("fall", bounded("fall"), "consecutive failures to become not connected"),
    "HEALTHD_RETRY_INTERVAL": Var(
        "retry_interval",
        bounded("retry_interval"),
        "seconds between probes while a change is pending (default: interval / 3, at least 1 s)",
    ),
    "HEALTHD_TIMEOUT": Var("timeout", bounded("timeout"), "per-probe timeout, seconds"),
    "HEALTHD_CONCURRENCY": Var(
        "concurrency", bounded("concurrency"), "probes in flight at once, per daemon"
    ),
    "HEALTHD_WORKERS": Var(
        "workers", workers, "probe processes of `healthd run` (`auto`: one per core)"
    ),
    "HEALTHD_LOG_FORMAT": Var(
        "log_format", choice(LOG_FORMATS), "`text` or `json` (one object per line)"
    ),
    "HEALTHD_HISTORY_DAYS": Var(
        "history_days",
        bounded("history_days"),
        "days of history, latency rollups and finished deliveries kept",
    ),
    "HEALTHD_DB_TIMEOUT": Var(
        "db_timeout",
        bounded("db_timeout"),
        "the daemon's bound on one database statement and on a silent connection, seconds",
    ),
    "HEALTHD_PUBLIC_URL": Var(
        "public_url",
        http_url,
        "the status page's address as people reach it (e.g. https://status.example.com);"
        " notifications link to the source's page there",
    ),
    "HEALTHD_SPOOL_DIR": Var(
        "spool_dir",
        text,
        "where results not written at stop are kept for the next start"
        " (default: $STATE_DIRECTORY, else ~/.local/state/healthd)",
    ),
}
VARIABLES = _ENV  # the documented table (docs/generate.py)


def to_environ(settings: Settings) -> dict[str, str]:
    """The daemon's settings as the HEALTHD_* variables that reproduce them (for the
    supervisor's workers, which must see the flags given to the supervisor)."""
    out: dict[str, str] = {}
    for name, var in _ENV.items():
        value = getattr(settings, var.attr)
        if name.startswith("HEALTHD_") and value is not None:
            out[name] = repr(value) if isinstance(value, float) else str(value)
    return out


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, then apply non-None overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    settings = Settings(**read(_ENV, env))
    flags = {k: v for k, v in overrides.items() if v is not None}
    for attr, value in flags.items():
        # a CLI flag passes the same checks as its variable (click's float takes "nan")
        if attr in RANGES:
            kind, lo, hi = RANGES[attr]
            flags[attr] = check_number("--" + attr.replace("_", "-"), value, kind, lo, hi)
    if flags:
        settings = replace(settings, **flags)
    return settings
