"""Secret references and scrubbing.

Any config value may be ``{"env": "NAME"}`` or ``{"file": "PATH"}``. References are
stored as they are and resolved only at probe time; a relative PATH is read from
``$CREDENTIALS_DIRECTORY`` so systemd ``LoadCredential=`` works.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from healthd.core.errors import HealthdError


class SecretError(HealthdError):
    """A reference could not be resolved; the message names the reference, not a value."""


def is_reference(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("env", "file")
        and isinstance(next(iter(value.values())), str)
    )


def resolve(value: Any) -> Any:
    """Resolve references anywhere inside ``value``."""
    if is_reference(value):
        kind, ref = next(iter(value.items()))
        return _read_env(ref) if kind == "env" else _read_file(ref)
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def _read_env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f'secret reference {{"env": "{name}"}}: the variable is not set')
    return value


def _read_file(path: str) -> str:
    p = Path(path)
    if not p.is_absolute():
        base = os.environ.get("CREDENTIALS_DIRECTORY")
        if not base:
            raise SecretError(
                f'secret reference {{"file": "{path}"}}: relative path'
                " but $CREDENTIALS_DIRECTORY is not set"
            )
        p = Path(base) / p
    try:
        return p.read_text("utf-8").strip()
    except OSError as exc:
        raise SecretError(
            f'secret reference {{"file": "{path}"}}: {exc.strerror or "unreadable"}'
        ) from None


# The userinfo ends at the LAST "@" before the authority ends (/ ? # or whitespace), as
# urllib and yarl parse it: in https://admin:p@ssw0rd@host/ the password is "p@ssw0rd".
_URL_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:[a-z0-9_-]*(?:key|token|secret|password|passwd|auth|signature|sig|credential)[a-z0-9_-]*)=)[^&\s'\"]+"
)


def strip_url_credentials(text: str) -> str:
    """Remove user:password@ from URLs and the values of secret-looking query params."""
    if "://" not in text and "=" not in text:
        return text  # nothing either pattern could match (most probe messages)
    text = _URL_CREDS.sub(lambda m: m.group("scheme"), text)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + "***", text)


def scrub(message: str, secrets: list[str]) -> str:
    """A message fit for logs and output: no known secret value, no URL credentials."""
    for s in sorted(set(secrets), key=len, reverse=True) if secrets else ():
        message = message.replace(s, "***")
    return strip_url_credentials(message)


def url_password(url: str) -> list[str]:
    """The password in a URL's userinfo, as written and percent-decoded (a message may
    quote either); [] when there is none."""
    try:
        raw = urlsplit(url).password
    except ValueError:
        return []
    if not raw:
        return []
    from urllib.parse import unquote

    return list(dict.fromkeys((raw, unquote(raw))))


def safe_url(url: str) -> str:
    """A URL for display: no userinfo, no query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def referenced_values(value: Any) -> list[str]:
    """The values of every reference inside ``value``, read now: whatever field holds a
    reference (argv, a tcp send), what it resolves to is a secret to scrub from messages."""
    if is_reference(value):
        resolved = resolve(value)
        return [resolved] if isinstance(resolved, str) else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in referenced_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in referenced_values(v)]
    return []
