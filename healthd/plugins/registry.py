"""Which plugin class a source's ``plugin`` names: the built-ins, then the
``healthd.plugins`` entry-point group (loaded on first use, then cached)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from healthd.core.errors import NotFound
from healthd.plugins.base import Plugin, secret_keys
from healthd.plugins.redaction import redact_config

BUILTIN: dict[str, str] = {
    "http": "healthd.plugins.http:HttpPlugin",
    "tcp": "healthd.plugins.tcp:TcpPlugin",
    "postgres": "healthd.plugins.postgres:PostgresPlugin",
    "ai-service": "healthd.plugins.ai_service:AiServicePlugin",
    "dns": "healthd.plugins.dns:DnsPlugin",
    "command": "healthd.plugins.command:CommandPlugin",
    "redis": "healthd.plugins.redis:RedisPlugin",
    "mysql": "healthd.plugins.mysql:MysqlPlugin",
    "grpc": "healthd.plugins.grpc:GrpcPlugin",
    "smtp": "healthd.plugins.smtp:SmtpPlugin",
    "tls": "healthd.plugins.tls:TlsPlugin",
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
        except Exception as exc:  # noqa: BLE001 - a third-party entry point may raise anything
            raise NotFound(f"plugin {name!r} failed to load: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise NotFound(f"plugin {name!r} is not a healthd Plugin subclass")
    _cache[name] = cls
    return cls


def create(name: str, config: Mapping[str, Any]) -> Plugin:
    """A ready plugin instance. Raises NotFound or ConfigError."""
    return get(name)(config)


def secret_fields(name: str) -> frozenset[str]:
    """The config keys of plugin ``name`` that hold a secret (aliases included)."""
    try:
        cls = get(name)
    except NotFound:
        return frozenset()
    return secret_keys(cls)


def redact(plugin_name: str, config: Any) -> Any:
    """Config fit to show: secret fields and secret-looking keys become "" (a reference
    is shown as the reference), credentials inside URLs are removed."""
    return redact_config(secret_fields(plugin_name), config)
