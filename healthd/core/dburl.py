"""What went wrong with a database URL or a connection attempt, said plainly and without
quoting the URL (its password, or a fragment of it in a parser's complaint)."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from healthd.core.errors import ConfigError
from healthd.core.secrets import strip_url_credentials

AUTH_STATES = ("28P01", "28000")  # invalid_password, invalid_authorization_specification
AUTH_MARKERS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "pg_hba.conf rejects",
    "no pg_hba.conf entry",
)


def check(url: str, name: str) -> str:
    """``url`` if libpq can parse it; else ConfigError naming ``name`` -- and not the
    parser's message, which quotes the text around the fault (a password, say)."""
    try:
        conninfo_to_dict(url)
    except psycopg.Error:
        raise ConfigError(
            name, "is not a valid libpq URL or conninfo string (key=value ... or postgresql://...)"
        ) from None
    return url


def is_auth_failure(exc: BaseException) -> bool:
    if getattr(exc, "sqlstate", None) in AUTH_STATES:
        return True
    text = str(exc).lower()
    return any(m in text for m in AUTH_MARKERS)


def auth_detail(exc: BaseException) -> str:
    """The server's own words (``password authentication failed for user "x"``)."""
    for line in str(exc).splitlines():
        _, fatal, rest = line.partition("FATAL:")
        if fatal:
            return strip_url_credentials(rest.strip())
    return "authentication failed"


def describe(exc: BaseException, variable: str = "HEALTHD_DATABASE_URL") -> str:
    """One line for an operator: authentication failures named as such, everything else
    the first line of the driver's message with any URL credentials removed."""
    if is_auth_failure(exc):
        return (
            f"authentication failed: {auth_detail(exc)} (check the user and password in {variable})"
        )
    lines = str(exc).strip().splitlines()
    return strip_url_credentials(lines[0] if lines else type(exc).__name__)
