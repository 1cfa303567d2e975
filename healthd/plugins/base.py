"""The plugin interface and the registry.

A plugin is a class with a ``name``, a declared ``fields`` schema, and one coroutine,
``check()``, that tests the connection and returns a :class:`ProbeResult`. Plugins that
hold a connection (postgres) keep it between probes, reconnect it when it breaks (and
say so in the result), and release it in ``close()``.

Expected failures are results, never exceptions: a refused connection is
``ProbeResult.disconnected("connection refused")``. The daemon still wraps every call in
a hard timeout and catches anything a buggy plugin raises, so one plugin can only ever
fail its own source.

Third-party plugins register a class under the ``healthd.plugins`` entry-point group.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

from healthd.errors import ConfigError, NotFound
from healthd.secrets import SecretError, is_reference, resolve, scrub, strip_url_credentials

log = logging.getLogger(__name__)

Status = Literal["connected", "disconnected", "error"]
STATUSES: tuple[str, ...] = ("connected", "disconnected", "error")


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome. ``status`` is connected, disconnected (could not reach it) or
    error (reached it, but it answered wrongly)."""

    status: Status
    message: str = ""
    latency_ms: float | None = None
    reconnected: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "connected"

    @classmethod
    def connected(cls, message: str = "", latency_ms: float | None = None) -> ProbeResult:
        return cls("connected", message, latency_ms)

    @classmethod
    def disconnected(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        return cls("disconnected", message, latency_ms)

    @classmethod
    def error(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        return cls("error", message, latency_ms)


@dataclass(frozen=True)
class Field:
    """One config field. ``kind`` is str, int, float, bool, list (of str), dict (str->str)
    or "codes" (an int or a list of ints). A ``secret`` field may hold a reference
    ({"env": NAME} / {"file": PATH}) and is redacted wherever config is shown."""

    kind: str
    required: bool = False
    default: Any = None
    secret: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict": lambda v: (
        isinstance(v, dict)
        and all(
            isinstance(x, str) and (isinstance(y, str) or is_reference(y)) for x, y in v.items()
        )
    ),
    "codes": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, list) and bool(v) and all(isinstance(x, int) for x in v))
    ),
}
_KIND_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "dict": "an object of strings",
    "codes": "a status code or a list of them",
}


class Plugin:
    """Base class of every probe plugin. Subclasses set ``name`` and ``fields`` and
    implement :meth:`check`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    fields: ClassVar[Mapping[str, Field]] = {}

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = validate_config(self, config)
        # most configs hold no reference: resolve (and collect secrets) once, not per probe
        self._static = not _has_reference(self.config)
        self._static_secrets = self.secrets_in(self.config) if self._static else []

    @property
    def secret_fields(self) -> frozenset[str]:
        return frozenset(k for k, f in self.fields.items() if f.secret)

    async def check(self, timeout: float) -> ProbeResult:
        """Test the connection once; never raise for an expected failure."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release anything held between probes. The default holds nothing."""

    def resolved(self) -> dict[str, Any]:
        """The config with secret references read now (at probe time, so a rotated
        secret is picked up without a restart). Raises SecretError naming the reference."""
        if getattr(self, "_static", False):
            return self.config
        return {k: resolve(v) for k, v in self.config.items()}

    def probe_secrets(self) -> list[str]:
        """The secret values a message of this probe must not contain."""
        if getattr(self, "_static", False):
            return self._static_secrets
        return self.secrets_in(self.resolved())

    def secrets_in(self, config: Mapping[str, Any]) -> list[str]:
        """Every resolved secret value, so messages can be scrubbed of them."""
        out: list[str] = []
        for key, value in config.items():
            if key in self.secret_fields or _looks_secret(key):
                out.extend(_strings(value))
        return [s for s in out if len(s) >= 3]


SECRET_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "credential",
    "dsn",
)


def _has_reference(value: Any) -> bool:
    if is_reference(value):
        return True
    if isinstance(value, dict):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def _looks_secret(key: str) -> bool:
    k = key.lower()
    return any(w in k for w in SECRET_WORDS)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def validate_config(plugin: type[Plugin] | Plugin, config: Any) -> dict[str, Any]:
    """Check ``config`` against the plugin's fields; fill defaults. Raises ConfigError
    naming the field (``config.url``)."""
    if not isinstance(config, Mapping):
        raise ConfigError("config", "must be an object")
    out: dict[str, Any] = {}
    for key in config:
        if key not in plugin.fields:
            known = ", ".join(plugin.fields) or "none"
            raise ConfigError(
                f"config.{key}", f"unknown field for plugin {plugin.name} (known: {known})"
            )
    for key, spec in plugin.fields.items():
        if key not in config or config[key] is None:
            if spec.required:
                raise ConfigError(f"config.{key}", f"is required by plugin {plugin.name}")
            if spec.default is not None:
                out[key] = spec.default
            continue
        value = config[key]
        if spec.secret and is_reference(value):
            out[key] = dict(value)
            continue
        if not _CHECKS[spec.kind](value):
            raise ConfigError(f"config.{key}", f"must be {_KIND_WORDS[spec.kind]}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"config.{key}", f"must be one of {', '.join(spec.choices)}")
        out[key] = value
    return out


async def run_check(plugin: Plugin, timeout: float) -> ProbeResult:
    """Run one check with the guarantees the daemon relies on: a hard timeout, no
    exception escapes, and no secret survives in the message."""
    started = time.perf_counter()
    secrets: list[str] = []
    try:
        secrets = plugin.probe_secrets()
        # the plugin applies `timeout` itself; this is the backstop for one that does not
        async with asyncio.timeout(timeout + 1.0):
            result = await plugin.check(timeout)
    except SecretError as exc:
        result = ProbeResult.error(str(exc))
    except TimeoutError:
        result = ProbeResult.disconnected(f"timed out after {timeout:g} s")
    except Exception as exc:  # a plugin bug must fail only its own source
        log.debug("plugin %s raised", plugin.name, exc_info=True)
        result = ProbeResult.error(f"plugin {plugin.name} failed: {type(exc).__name__}: {exc}")
    return sanitised(result, plugin.name, secrets, started)


MAX_MESSAGE = 2000  # characters of a probe message kept (a command can print megabytes)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """Text PostgreSQL and JSON can store: NUL and lone surrogates (which no UTF-8 can
    carry) become U+FFFD, and it is cut to ``limit`` characters."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def sanitised(
    result: Any, plugin_name: str, secrets: Sequence[str] = (), started: float | None = None
) -> ProbeResult:
    """Everything a plugin hands back, made fit to store: a known status, a finite
    latency, a message without secrets, NUL or lone surrogates, of bounded length. A
    third-party plugin returning something else fails only its own source."""
    if not isinstance(result, ProbeResult):
        return ProbeResult.error(
            f"plugin {plugin_name} returned {type(result).__name__}, not a ProbeResult"
        )
    status, message = result.status, result.message
    if not isinstance(message, str):
        message = "" if message is None else repr(message)
    if status not in STATUSES:
        message = f"plugin {plugin_name} returned an unknown status {str(status)[:40]!r}"
        status = "error"
    latency = result.latency_ms
    if not isinstance(latency, int | float) or not math.isfinite(latency) or latency < 0:
        latency = None
    if latency is None and started is not None:
        latency = round((time.perf_counter() - started) * 1000, 2)
    # cut before scrubbing (the URL patterns are slow on megabytes), but far enough out
    # that a secret or URL credentials crossing MAX_MESSAGE are still whole, so scrubbed
    message = message[: MAX_MESSAGE + max((len(x) for x in secrets), default=0) + 256]
    return ProbeResult(
        status,
        clean_text(scrub(message, list(secrets))),
        latency,
        bool(result.reconnected),
    )


# -- registry -------------------------------------------------------------------------

BUILTIN: dict[str, str] = {
    "http": "healthd.plugins.http:HttpPlugin",
    "tcp": "healthd.plugins.tcp:TcpPlugin",
    "postgres": "healthd.plugins.postgres:PostgresPlugin",
    "ai-service": "healthd.plugins.ai_service:AiServicePlugin",
    "dns": "healthd.plugins.dns:DnsPlugin",
    "command": "healthd.plugins.command:CommandPlugin",
}
_cache: dict[str, type[Plugin]] = {}


def _load(target: str) -> type[Plugin]:
    module, _, attr = target.partition(":")
    cls = getattr(import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"{target} is not a healthd Plugin subclass")
    return cls


def _third_party() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="healthd.plugins")}


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_third_party()))


def get(name: str) -> type[Plugin]:
    """The plugin class registered as ``name``; NotFound names the unknown alias."""
    if name in _cache:
        return _cache[name]
    if name in BUILTIN:
        cls = _load(BUILTIN[name])
    else:
        ep = _third_party().get(name)
        if ep is None:
            raise NotFound(f"unknown plugin {name!r} (known: {', '.join(names())})")
        try:
            cls = ep.load()
        except Exception as exc:
            raise NotFound(f"plugin {name!r} failed to load: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise NotFound(f"plugin {name!r} is not a healthd Plugin subclass")
    _cache[name] = cls
    return cls


def create(name: str, config: Mapping[str, Any]) -> Plugin:
    """A ready plugin instance. Raises NotFound or ConfigError."""
    return get(name)(config)


def secret_fields(name: str) -> frozenset[str]:
    try:
        cls = get(name)
    except NotFound:
        return frozenset()
    return frozenset(k for k, f in cls.fields.items() if f.secret)


def redact(plugin_name: str, config: Any) -> Any:
    """Config fit to show: secret fields and secret-looking keys become "" (a reference
    is shown as the reference), credentials inside URLs are removed."""
    declared = secret_fields(plugin_name)

    def walk(value: Any, secret: bool) -> Any:
        if is_reference(value):
            return dict(value)
        if isinstance(value, dict):
            return {
                k: walk(v, secret or k in declared or _looks_secret(k)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v, secret) for v in value]
        if secret:
            return ""
        if isinstance(value, str):
            return strip_url_credentials(value)
        return value

    return walk(config, False) if isinstance(config, dict) else {}


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


__all__ = [
    "Field",
    "Plugin",
    "ProbeResult",
    "STATUSES",
    "create",
    "get",
    "names",
    "redact",
    "run_check",
    "validate_config",
    "elapsed_ms",
    "clean_text",
    "sanitised",
]
