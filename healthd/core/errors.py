"""The one exception root of healthd; every message is meant for an operator to act on."""

from __future__ import annotations


class HealthdError(Exception):
    """Base of every error healthd raises on purpose."""


class ConfigError(HealthdError, ValueError):
    """A setting or a source definition is invalid; the message names the field."""

    def __init__(self, field: str, problem: str, where: str = "") -> None:
        self.field = field
        self.problem = problem
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}: {problem}")


class NotFound(HealthdError, LookupError):
    """No such source, webhook or plugin."""


class DatabaseError(HealthdError):
    """PostgreSQL could not be reached or refused the operation."""


class EmbeddedPostgresError(HealthdError):
    """The throwaway PostgreSQL cluster could not be set up."""


def first_line(exc: BaseException) -> str:
    """An exception as one line for a log or a CLI error (psycopg's messages run on with
    DETAIL and HINT lines)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
