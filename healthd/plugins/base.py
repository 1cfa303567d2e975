"""The plugin interface: what a plugin author implements and what the daemon promises.

A plugin is a subclass of :class:`Plugin` with a ``name``, a declared ``fields`` schema
and one coroutine, :meth:`Plugin.check`, that tests the connection once and returns a
:class:`ProbeResult`. The daemon keeps one instance per source (a new one when the
source's config changes) and calls it from a single asyncio event loop.

What the daemon guarantees around every ``check()`` (dispatch.py and guard.py):

- **One at a time per source.** The dispatcher never has two probes of one source in
  flight, not even while a changed source's old instance finishes its last probe. So an
  instance needs no lock around the state it keeps between probes (a connection, a
  counter). Probes of *different* sources do run concurrently on the same loop, so
  class-level mutable state is shared and must not be.
- **A hard timeout, by cancellation.** ``check(timeout)`` should give up by itself
  after ``timeout`` seconds; the guard cancels it one second later if it has not. On
  shutdown, probes still running after the grace period are cancelled too. Cancellation
  arrives as :class:`asyncio.CancelledError` at an ``await``: let it propagate (clean up
  in ``finally``), never swallow it, or the timeout cannot be enforced. The instance is
  probed again after a cancelled check, so it must cope with whatever state the
  cancelled one left half-done.
- **No exception escapes.** Whatever ``check()`` raises becomes a result of this
  source only (see :meth:`Plugin.check`); the daemon and the other sources carry on.
- **Messages are scrubbed for the plugin.** Before a message is stored, logged or
  printed, the guard replaces every resolved value of a secret field (and of any
  secret-looking key, redaction.py) with ``***`` and removes ``user:password@`` from
  URLs. A plugin may put the server's own words in a message without vetting them.
- **close() is called once, never during a check.** When the source is removed,
  disabled or replaced, and when the daemon stops, ``close()`` is awaited after any
  in-flight check has ended (bounded to 5 s, exceptions ignored).

Expected failures are results, never exceptions: a refused connection is
``ProbeResult.disconnected("connection refused")``.

Third-party plugins register a class under the ``healthd.plugins`` entry-point group
(registry.py); ``healthd plugins`` lists what is installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from healthd.core.errors import ConfigError
from healthd.core.phases import Phases
from healthd.core.secrets import is_reference, referenced_values, resolve, url_password
from healthd.core.words import CONNECTED, DISCONNECTED, ERROR, PROBE_STATUSES, Status
from healthd.plugins.redaction import has_reference, looks_secret, strings

STATUSES = PROBE_STATUSES


# a TCP or UDP port, as Field bounds
PORTS = (1, 65535)
# a secret shorter than this is not scrubbed from messages: it would scrub ordinary words
MIN_SECRET_CHARS = 3


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome, as :meth:`Plugin.check` returns it.

    ``status`` is one of the probe statuses (healthd/core/words.py): ``connected`` (it answered
    as expected), ``disconnected`` (could not reach it: refused, timed out, no route,
    DNS failure) or ``error`` (reached it, but it answered wrongly: a 500, bad
    credentials, a failing query). The debounce counts both failures alike; the words
    tell the operator which kind of failure it was.

    ``message`` is one short line for the operator (scrubbed by the guard, see the module
    docstring). ``latency_ms`` is the time the probe itself measured; ``None`` lets the
    guard measure the whole call instead. ``reconnected`` says that a connection the
    plugin keeps between probes had broken and this probe made a fresh one that works:
    the daemon counts it (``reconnect_count``, the summary line) and logs it, without a
    status change. Only a plugin that keeps a connection sets it; the first connection
    of an instance is not a reconnection.

    ``phases`` is where an HTTP probe's time went (healthd/core/phases.py: resolve,
    connect, tls, processing, transfer, in milliseconds); ``None`` for a probe that has
    no such phases or did not get an answer. The daemon adds them to the latency rollups
    and its own metrics; ``healthd probe`` prints them.
    """

    status: Status
    message: str = ""
    latency_ms: float | None = None
    reconnected: bool = False
    phases: Phases | None = None

    @property
    def ok(self) -> bool:
        """True for ``connected``."""
        return self.status == CONNECTED

    @classmethod
    def connected(cls, message: str = "", latency_ms: float | None = None) -> ProbeResult:
        """It answered as expected."""
        return cls(CONNECTED, message, latency_ms)

    @classmethod
    def disconnected(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        """It could not be reached; ``message`` says how (refused, timed out, ...)."""
        return cls(DISCONNECTED, message, latency_ms)

    @classmethod
    def error(cls, message: str, latency_ms: float | None = None) -> ProbeResult:
        """It was reached and answered wrongly; ``message`` says what was wrong."""
        return cls(ERROR, message, latency_ms)


@dataclass(frozen=True)
class Field:
    """One key of a plugin's config, declared in :attr:`Plugin.fields`.

    ``kind`` is ``str``, ``int``, ``float``, ``bool``, ``list`` (of strings), ``dict``
    (string to string), ``codes`` (a status code or a list of them) or ``objects`` (a list
    of JSON objects, whose keys the plugin checks itself); a value of another
    type is refused with a one-line error naming ``config.<key>``. ``required`` fields
    must be present; otherwise ``default`` (if not ``None``) is filled in. ``choices``
    restricts a string to a few words, ``bounds`` a number to a closed range (a port:
    ``(1, 65535)``). ``help`` is shown by ``healthd plugins``.

    A ``secret`` field holds a credential. It may be given as a reference,
    ``{"env": NAME}`` or ``{"file": PATH}``, read at every probe (:meth:`Plugin.resolved`)
    so a rotated secret needs no restart; it is redacted wherever a config is shown (API,
    CLI, export), and its resolved value is scrubbed from every message. Keys whose name
    looks secret (``token``, ``password``, ... in redaction.py) are treated the same way
    when shown or scrubbed, declared secret or not.

    ``aliases`` are other keys accepted for this field, as another system spells it (the
    original backend wrote ``apiKey`` for ``api_key``): the validated config holds the
    field's own name, the stored config keeps the key as it was written, and an alias of a
    secret field is as secret as the field. Giving both spellings is refused.
    """

    kind: str
    required: bool = False
    default: Any = None
    secret: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None  # lowest and highest value allowed, inclusive
    # not secret as a whole, but may hold a reference (a str field) or references among
    # its items (a list field): argv ["mysql", "-p", {"env": "DB_PW"}], a tcp AUTH line
    refs: bool = False
    aliases: tuple[str, ...] = ()


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
    "objects": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
}
_KIND_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "dict": "an object of strings",
    "codes": "a status code or a list of them",
    "objects": "a list of objects",
}


class Plugin:
    """Base class of every probe plugin.

    Subclasses set :attr:`name`, :attr:`description` and :attr:`fields` and implement
    :meth:`check`; a plugin that keeps something open between probes also implements
    :meth:`close`. See the module docstring for what the daemon guarantees around them.
    """

    name: ClassVar[str] = ""
    """The alias a source's ``plugin`` column names (``http``, ``postgres``, ...)."""

    description: ClassVar[str] = ""
    """One line for ``healthd plugins``."""

    fields: ClassVar[Mapping[str, Field]] = {}
    """The config keys this plugin accepts; any other key is refused."""

    extra: ClassVar[str] = ""
    """The optional dependency group its client comes from (``pip install
    'healthd[grpc]'``), or "" when it needs none. Such a plugin imports its client inside
    :meth:`check` (through :func:`needs_extra`), so a source of it validates, and fails
    alone as ``error`` naming the extra, where the extra is not installed."""

    extra_modules: ClassVar[tuple[str, ...]] = ()
    """The modules the extra provides, as :meth:`installed` looks for them."""
    url_password_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding a URL or DSN whose userinfo password is a secret of its own, scrubbed
    even where a message quotes it alone (whether or not the whole value is secret)."""

    @classmethod
    def installed(cls) -> bool:
        """Whether the modules of :attr:`extra` can be imported (without importing them:
        ``healthd plugins`` should not load grpc to say so)."""
        return all(_findable(m) for m in cls.extra_modules)

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Validate ``config`` and keep it as :attr:`config` (defaults filled in).

        Called once per source version, at load and whenever the source's config changes
        (the old instance is closed). It must not do I/O: connect in :meth:`check`.

        :param config: the source's ``config`` object, as stored.
        :raises ConfigError: a field is missing, unknown or of the wrong type (naming it);
            a subclass may raise it too for a rule across fields. The source is then
            not probed and shows the message as its error.
        """
        self.config = validate_config(self, config)
        # most configs hold no reference: resolve (and collect secrets) once, not per probe
        self._static = not has_reference(self.config)
        self._static_secrets = self.secrets_in(self.config) if self._static else []

    @property
    def secret_fields(self) -> frozenset[str]:
        """The names (and aliases) of the fields declared ``secret``."""
        return secret_keys(self)

    async def check(self, timeout: float) -> ProbeResult:
        """Test the connection once.

        Never called twice at once for one source; may be cancelled (see the module
        docstring): let :class:`asyncio.CancelledError` propagate. Read the config with
        :meth:`resolved`, not :attr:`config`, so secret references are honoured.

        :param timeout: seconds this probe may take, all steps together (connect, ask,
            read). The guard cancels the call one second after it.
        :returns: the outcome. An expected failure (refused, timed out, a wrong answer)
            is a result, ``disconnected`` or ``error``, never an exception.
        :raises Exception: only for a bug. The guard turns any exception into an
            ``error`` result "plugin NAME failed: Type: message" (the traceback is logged
            at debug level); :class:`TimeoutError` becomes ``disconnected``
            "timed out after N s"; a :class:`~healthd.core.secrets.SecretError` from
            :meth:`resolved` becomes an ``error`` naming the reference.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Release anything held between probes (a connection, a session).

        Awaited once, after the last :meth:`check` of this instance has ended: when the
        source is removed, disabled, its config changes or its shard moves to another
        daemon, and at shutdown. Bounded to
        5 s; what it raises is logged at debug level and otherwise ignored. The default
        holds nothing.
        """

    def resolved(self) -> dict[str, Any]:
        """The config with secret references read now.

        Read at probe time, so a rotated secret is picked up without a restart.

        :returns: :attr:`config` with every ``{"env": ...}`` / ``{"file": ...}`` replaced
            by its value (the same object when the config holds no reference).
        :raises SecretError: a reference cannot be read; the message names the
            reference, never a value.
        """
        if getattr(self, "_static", False):
            return self.config
        return {k: resolve(v) for k, v in self.config.items()}

    def probe_secrets(self) -> list[str]:
        """The secret values a message of this probe must not contain (the guard's)."""
        if getattr(self, "_static", False):
            return self._static_secrets
        found = self.secrets_in(self.resolved()) + referenced_values(self.config)
        return [s for s in found if len(s) >= MIN_SECRET_CHARS]

    def secrets_in(self, config: Mapping[str, Any]) -> list[str]:
        """Every secret value in ``config`` (secret fields, secret-looking keys and the
        passwords of :attr:`url_password_fields`), at least :data:`MIN_SECRET_CHARS` long
        (shorter ones would scrub ordinary words)."""
        out: list[str] = []
        for key, value in config.items():
            if key in self.secret_fields or looks_secret(key):
                out.extend(strings(value))
            if key in self.url_password_fields and isinstance(value, str):
                out.extend(url_password(value))
        return [s for s in out if len(s) >= MIN_SECRET_CHARS]


def needs_extra(plugin: type[Plugin] | Plugin) -> ProbeResult | None:
    """``None`` when the plugin's extra is installed, else the ``error`` result that says
    which extra to install (what :meth:`Plugin.check` returns at once)."""
    if plugin.installed():
        return None
    return ProbeResult.error(
        f"the {plugin.name} plugin needs the {plugin.extra!r} extra:"
        f" pip install 'healthd[{plugin.extra}]'"
    )


def _findable(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def validate_config(plugin: type[Plugin] | Plugin, config: Any) -> dict[str, Any]:
    """Check ``config`` against the plugin's fields and fill in defaults.

    :param plugin: the plugin class (or an instance) whose :attr:`Plugin.fields` apply.
    :param config: the config as given (any JSON value).
    :returns: a new dict: the given values, plus defaults for absent optional fields.
    :raises ConfigError: naming the field (``config.url``): not an object, an unknown
        key, a missing required field, a wrong type or a value outside ``choices`` or
        ``bounds``.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("config", "must be an object")
    given, spelled = _by_field(plugin, config)
    out: dict[str, Any] = {}
    for key, spec in plugin.fields.items():
        if key not in given or given[key] is None:
            if spec.required:
                also = f" (also accepted as {', '.join(spec.aliases)})" if spec.aliases else ""
                raise ConfigError(f"config.{key}", f"is required by plugin {plugin.name}{also}")
            if spec.default is not None:
                out[key] = spec.default
            continue
        value, path = given[key], f"config.{spelled[key]}"
        if (spec.secret or spec.refs) and is_reference(value):
            out[key] = dict(value)
            continue
        if spec.refs and spec.kind == "list" and isinstance(value, list):
            if not all(isinstance(x, str) or is_reference(x) for x in value):
                raise ConfigError(path, "must be a list of strings or references")
            out[key] = [dict(x) if is_reference(x) else x for x in value]
            continue
        if not _CHECKS[spec.kind](value):
            raise ConfigError(path, f"must be {_KIND_WORDS[spec.kind]}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(path, f"must be one of {', '.join(spec.choices)}")
        if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
            raise ConfigError(path, f"must be {spec.bounds[0]}-{spec.bounds[1]}")
        out[key] = value
    return out


def _by_field(
    plugin: type[Plugin] | Plugin, config: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The config keyed by field name (aliases resolved), and each field's key as given."""
    alias_of = {a: k for k, f in plugin.fields.items() for a in f.aliases}
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in config.items():
        name = key if key in plugin.fields else alias_of.get(key)
        if name is None:
            known = ", ".join(plugin.fields) or "none"
            raise ConfigError(
                f"config.{key}", f"unknown field for plugin {plugin.name} (known: {known})"
            )
        if name in given:
            raise ConfigError(
                f"config.{key}", f"is another name of config.{spelled[name]}: give one of them"
            )
        given[name], spelled[name] = value, key
    return given, spelled


def secret_keys(plugin: type[Plugin] | Plugin) -> frozenset[str]:
    """The config keys of ``plugin`` that hold a secret: its ``secret`` fields' names and
    their aliases."""
    return frozenset(name for k, f in plugin.fields.items() if f.secret for name in (k, *f.aliases))


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a :func:`time.perf_counter` value), for
    :attr:`ProbeResult.latency_ms`."""
    return round((time.perf_counter() - started) * 1000, 2)


__all__ = [
    "STATUSES",
    "Field",
    "Phases",
    "Plugin",
    "ProbeResult",
    "elapsed_ms",
    "secret_keys",
    "needs_extra",
    "validate_config",
]
