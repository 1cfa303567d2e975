"""What an operator declares about a source, validated before anything is written."""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from healthd import plugins
from healthd.config.settings import RANGES, check_number
from healthd.core import fields
from healthd.core.errors import ConfigError, NotFound
from healthd.core.text import CONTROL_RULE, has_control

# What one URL path segment carries unescaped (/api/v1/sources/<id>): letters, digits and
# . _ ~ : -, starting with a letter or digit (so never "." or ".."). \Z, not $: "$" also
# matches before a trailing newline.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,49}\Z")
ID_RULE = "must be 1-50 characters: letters, digits and . _ ~ : - (starting with a letter or digit)"
SETTINGS_FIELDS = fields.SETTINGS
INT_FIELDS = tuple(f for f in SETTINGS_FIELDS if fields.BY_NAME[f].sql_type == "integer")
KNOWN_FIELDS = fields.OPERATOR


@dataclass(frozen=True)
class SourceSpec:
    id: str
    plugin: str
    config: dict[str, Any]
    name: str = ""
    type: str = "service"
    enabled: bool = True
    interval_s: float | None = None
    timeout_s: float | None = None
    rise: int | None = None
    fall: int | None = None
    retry_interval_s: float | None = None
    depends_on: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["depends_on"] = list(self.depends_on)
        return {k: v for k, v in d.items() if v is not None and v != []}


def validate(entry: Any, where: str = "") -> SourceSpec:
    """One source definition -> SourceSpec, or ConfigError naming ``where`` and the field."""
    if not isinstance(entry, dict):
        raise ConfigError("entry", "must be a table/object", where)
    sid = entry.get("id")
    if isinstance(sid, str) and where:
        where = f"{where} (id {sid!r})"
    for key in entry:
        if key not in KNOWN_FIELDS:
            raise ConfigError(key, f"unknown field (known: {', '.join(KNOWN_FIELDS)})", where)
    if not isinstance(sid, str) or not ID_RE.match(sid):
        raise ConfigError("id", ID_RULE, where)
    plugin = entry.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise ConfigError("plugin", "is required", where)
    if "config" not in entry:
        raise ConfigError("config", "is required", where)
    try:
        cls = plugins.get(plugin)
    except NotFound as exc:
        raise ConfigError("plugin", str(exc), where) from None
    try:
        # the plugin's constructor: its fields and its own rules across them (a JMESPath
        # expression, a URL scheme), with no I/O (base.py), as the daemon will load it
        cls(entry["config"])
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.problem, where) from None
    except Exception as exc:  # noqa: BLE001 - a third-party plugin's constructor, as in dispatch.py
        problem = f"plugin {plugin} refused it: {type(exc).__name__}"
        raise ConfigError("config", problem, where) from None
    _storable(entry["config"], "config", where)
    return SourceSpec(
        id=sid,
        plugin=plugin,
        config=dict(entry["config"]),
        name=_text(entry, "name", sid, 100, where),
        type=_text(entry, "type", "service", 50, where),
        enabled=_bool(entry, "enabled", where),
        **{k: _positive(entry, k, where) for k in SETTINGS_FIELDS},
        depends_on=_depends_on(entry, sid, where),
    )


def _depends_on(entry: dict[str, Any], sid: str, where: str) -> tuple[str, ...]:
    value = entry.get("depends_on") or []
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and ID_RE.match(v) for v in value
    ):
        raise ConfigError("depends_on", "must be a list of source ids", where)
    if sid in value:
        raise ConfigError("depends_on", f"dependency cycle {sid} -> {sid}", where)
    return tuple(dict.fromkeys(value))


def _text(entry: dict[str, Any], key: str, default: str, limit: int, where: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ConfigError(key, f"must be a non-empty string of at most {limit} characters", where)
    _storable(value, key, where)
    if has_control(value):
        raise ConfigError(key, CONTROL_RULE, where)
    return value


def _storable(value: Any, path: str, where: str) -> None:
    """What PostgreSQL would refuse (text with NUL, lone surrogates, non-finite numbers in
    jsonb) refused here, naming the entry and the field, instead of as a database error."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ConfigError(path, "must not contain a NUL character", where)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(path, "must be valid Unicode (a lone surrogate)", where) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(path, "must be a finite number", where)
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(k, f"{path} key", where)
            _storable(v, f"{path}.{k}", where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _storable(v, f"{path}[{i}]", where)


def _bool(entry: dict[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false", where)
    return value


# per-source field -> the setting whose bounds it shares
_RANGE_OF = {
    "interval_s": "interval",
    "timeout_s": "timeout",
    "rise": "rise",
    "fall": "fall",
    "retry_interval_s": "retry_interval",
}


def _positive(entry: dict[str, Any], key: str, where: str) -> Any:
    value = entry.get(key)
    if value is None:
        return None
    return number_field(key, value, where)


def check_row(row: dict[str, Any]) -> None:
    """What the daemon checks of a row it loads, which plain SQL may have written past the
    CLI's rules: the per-source numbers and no control character in the id or the name.
    Raises ConfigError naming the field."""
    for key in SETTINGS_FIELDS:
        if row.get(key) is not None:
            number_field(key, row[key])
    for key in ("id", "name"):
        if isinstance(row.get(key), str) and has_control(row[key]):
            raise ConfigError(key, CONTROL_RULE)


def number_field(key: str, value: Any, where: str = "") -> Any:
    """A per-source number, finite and within the bounds of its daemon-wide setting."""
    kind, lo, hi = RANGES[_RANGE_OF[key]]
    try:
        return check_number(key, value, kind, lo, hi)
    except ConfigError as exc:
        raise ConfigError(key, exc.problem, where) from None


def read_file(path: Path) -> list[Any]:
    """The raw entries of an import file (TOML or JSON, by extension or content)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(str(path), exc.strerror or "cannot be read") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"is not valid UTF-8 (byte {exc.start})") from None
    data = _parse(path, text)
    if not isinstance(data, dict) or "sources" not in data:
        raise ConfigError(str(path), "must have a list under the key 'sources'")
    entries = data["sources"]
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: sources", "must be a list")
    return entries


def _parse(path: Path, text: str) -> Any:
    is_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".toml" and text.lstrip().startswith("{")
    )
    try:
        return json.loads(text) if is_json else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if is_json else "TOML"
        raise ConfigError(str(path), f"is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ConfigError(str(path), "is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        kind = "JSON" if is_json else "TOML"
        raise ConfigError(str(path), f"is not valid {kind}: {str(exc).split(';')[0]}") from None


def validate_all(entries: list[Any]) -> list[SourceSpec]:
    """Every entry valid and ids unique, or the first problem as ConfigError."""
    specs: list[SourceSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        spec = validate(entry, f"entry {i}")
        if spec.id in seen:
            raise ConfigError("id", "duplicate id in this file", f"entry {i} (id {spec.id!r})")
        seen.add(spec.id)
        specs.append(spec)
    return specs
