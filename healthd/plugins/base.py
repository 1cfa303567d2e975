"""The plugin interface: what a plugin author implements and what the daemon promises.

A plugin is a class with a ``name``, a declared ``fields`` schema, and one coroutine,
``check()``, that tests the connection and returns a :class:`ProbeResult`. Plugins that
hold a connection (postgres) keep it between probes, reconnect it when it breaks (and
say so in the result), and release it in ``close()``.

Expected failures are results, never exceptions: a refused connection is
``ProbeResult.disconnected("connection refused")``. The daemon still wraps every call in
a hard timeout and catches anything a buggy plugin raises (guard.py), so one plugin can
only ever fail its own source.

Third-party plugins register a class under the ``healthd.plugins`` entry-point group
(registry.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from healthd.errors import ConfigError
from healthd.plugins.redaction import has_reference, looks_secret, strings
from healthd.secrets import is_reference, resolve
from healthd.words import CONNECTED, DISCONNECTED, ERROR, PROBE_STATUSES, Status

STATUSES = PROBE_STATUSES


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
        return self.status == CONNECTED

    @classmethod
    def connected(cls, message: str = "", latency_ms: float | None = None) -> ProbeResult:
        return cls(CONNECTED, message, latency_ms)

    @classmethod
    def disconnected(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        return cls(DISCONNECTED, message, latency_ms)

    @classmethod
    def error(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        return cls(ERROR, message, latency_ms)


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
        self._static = not has_reference(self.config)
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
            if key in self.secret_fields or looks_secret(key):
                out.extend(strings(value))
        return [s for s in out if len(s) >= 3]


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


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


__all__ = [
    "STATUSES",
    "Field",
    "Plugin",
    "ProbeResult",
    "elapsed_ms",
    "validate_config",
]
