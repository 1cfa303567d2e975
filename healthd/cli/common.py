"""What every `healthd` command shares: the one-line failure, JSON output, the lazily loaded
settings in the click context."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from healthd import plugins
from healthd.config import settings
from healthd.core.errors import ConfigError

EXIT_FAILED, EXIT_UNKNOWN = 2, 3


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"healthd: {message}", err=True)
    sys.exit(code)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # UTC with a Z, as the API and the webhooks say it, whatever the session's TimeZone
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def dump(value: Any) -> None:
    click.echo(json.dumps(value, default=_json_default, indent=2, sort_keys=False))


def redacted(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if "config" in out:
        out["config"] = plugins.redact(out.get("plugin", ""), out["config"])
    return out


def parse_json(raw: str, field: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(field, f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ConfigError(field, "is nested too deeply") from None


class Ctx:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: settings.Settings | None = None

    @property
    def settings(self) -> settings.Settings:
        if self._settings is None:
            self._settings = settings.load(**self.overrides)
        return self._settings

    @property
    def url(self) -> str:
        return self.settings.require_database_url()


pass_ctx = click.make_pass_decorator(Ctx)
