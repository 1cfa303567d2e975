"""Which parts of a source's config are secret, and the config fit to show.

Pure: no registry and no I/O, so the interface (base.py) and the registry both use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from healthd.core.secrets import is_reference, strip_url_credentials

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


def has_reference(value: Any) -> bool:
    if is_reference(value):
        return True
    if isinstance(value, dict):
        return any(has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(has_reference(v) for v in value)
    return False


def looks_secret(key: str) -> bool:
    k = key.lower()
    return any(w in k for w in SECRET_WORDS)


def strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def redact_config(declared: frozenset[str], config: Any) -> Any:
    """Config fit to show: secret fields and secret-looking keys become "" (a reference
    is shown as the reference), credentials inside URLs are removed."""

    def walk(value: Any, secret: bool) -> Any:
        if is_reference(value):
            return dict(value)
        if isinstance(value, dict):
            return {
                k: walk(v, secret or k in declared or looks_secret(k)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v, secret) for v in value]
        if secret:
            return ""
        if isinstance(value, str):
            return strip_url_credentials(value)
        return value

    return walk(config, False) if isinstance(config, dict) else {}
