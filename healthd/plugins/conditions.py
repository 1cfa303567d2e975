"""Conditions on an HTTP answer: ``expect_json`` (JMESPath), ``max_latency_ms`` and
``min_cert_days``, validated once from a source's config and judged against a small
record of each answer.

Pure: no I/O and no clock. The http plugin (http.py) fetches the answer, measures it and
works out the certificate's days left; this module only says whether the conditions hold
and, when one does not, what was seen ("status is 'DOWN', expected 'UP'"). The status page
(statusapi/page/views.py) shows :func:`describe`'s lines for a source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser

from healthd.core.errors import ConfigError

FIELDS = ("expect_json", "max_latency_ms", "min_cert_days")
_KEYS = ("path", "equals", "exists")
_SHOWN = 80  # characters of a value a message quotes (a server may answer with megabytes)
_PREFIX = re.compile(r"(?i)^(?:invalid|bad) jmespath expression:\s*")


@dataclass(frozen=True)
class JsonCondition:
    """One ``expect_json`` item: ``path`` must yield ``equals`` (when ``exists`` is None),
    or must yield something that is not null (``exists`` true) or nothing (false)."""

    path: str
    expression: jmespath.parser.ParsedResult
    equals: Any = None
    exists: bool | None = None

    def failure(self, document: Any) -> str | None:
        """Why ``document`` fails this condition, or None."""
        seen = self.expression.search(document)
        if self.exists is True:
            return None if seen is not None else f"{self.path} is missing"
        if self.exists is False:
            return None if seen is None else f"{self.path} is {show(seen)}, expected nothing"
        if same(seen, self.equals):
            return None
        what = "missing" if seen is None else show(seen)
        return f"{self.path} is {what}, expected {show(self.equals)}"


@dataclass(frozen=True)
class Conditions:
    """The conditions of one source; empty (falsy) when it sets none."""

    expect_json: tuple[JsonCondition, ...] = ()
    max_latency_ms: float | None = None
    min_cert_days: float | None = None

    def __bool__(self) -> bool:
        return bool(self.expect_json) or self.max_latency_ms is not None or self.needs_cert

    @property
    def needs_body(self) -> bool:
        return bool(self.expect_json)

    @property
    def needs_cert(self) -> bool:
        return self.min_cert_days is not None


@dataclass(frozen=True)
class Answer:
    """What the conditions are judged against: one HTTP answer, as measured.

    ``body_complete`` is false when the body was longer than the plugin reads;
    ``cert_days`` is None when no certificate was read (plain HTTP, or the handshake that
    reads it failed after the request itself had succeeded)."""

    status: int
    body: bytes = b""
    elapsed_ms: float = 0.0
    cert_days: float | None = None
    cert_expires: datetime | None = None
    body_complete: bool = True


def parse(config: Mapping[str, Any]) -> Conditions:
    """The conditions in an http source's config (its fields already type-checked).

    :raises ConfigError: naming the field (``config.expect_json[1].path``): a bad JMESPath
        expression, an unknown key, neither or both of ``equals``/``exists``, a limit that
        is not positive, ``min_cert_days`` on a URL or setting where no certificate is read.
    """
    given = config.get("expect_json") or []
    items = tuple(_json_condition(item, i) for i, item in enumerate(given))
    latency = _positive(config, "max_latency_ms", "milliseconds")
    days = _positive(config, "min_cert_days", "days")
    if days is not None:
        if not str(config.get("url", "")).startswith("https://"):
            raise ConfigError("config.min_cert_days", "applies to https:// URLs only")
        if config.get("verify_tls") is False:
            raise ConfigError(
                "config.min_cert_days",
                "needs verify_tls: the dates of an unverified certificate are not read",
            )
    return Conditions(items, latency, days)


def _json_condition(item: Mapping[str, Any], i: int) -> JsonCondition:
    where = f"config.expect_json[{i}]"
    for key in item:
        if key not in _KEYS:
            raise ConfigError(f"{where}.{key}", "unknown key (known: path, equals, exists)")
    path = item.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{where}.path", "is required: a JMESPath expression")
    try:
        expression = jmespath.compile(path)
    except jmespath.exceptions.JMESPathError as exc:
        raise ConfigError(f"{where}.path", _bad_expression(path, exc)) from None
    if ("equals" in item) == ("exists" in item):
        raise ConfigError(where, "needs exactly one of equals or exists")
    if "exists" in item:
        if not isinstance(item["exists"], bool):
            raise ConfigError(f"{where}.exists", "must be true or false")
        return JsonCondition(path, expression, exists=item["exists"])
    return JsonCondition(path, expression, equals=item["equals"])


def _bad_expression(path: str, exc: jmespath.exceptions.JMESPathError) -> str:
    """One line: jmespath's own message runs over three, the expression and a caret."""
    if isinstance(exc, jmespath.exceptions.IncompleteExpressionError):
        reason = "it ends too soon"
    elif isinstance(exc, jmespath.exceptions.LexerError):
        reason = str(getattr(exc, "message", "") or "a bad character").rstrip(":. ").lower()
    elif isinstance(exc, jmespath.exceptions.ParseError) and exc.token_value:
        reason = f"unexpected {show(str(exc.token_value))}"
    else:
        reason = _PREFIX.sub("", str(exc).splitlines()[0]).rstrip(":. ").lower()
    column = getattr(exc, "lex_position", None)
    at = f" at column {column}" if isinstance(column, int) else ""
    return f"{show(path)} is not a valid JMESPath expression ({reason}{at})"


def _positive(config: Mapping[str, Any], key: str, unit: str) -> float | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"config.{key}", f"must be a positive number of {unit}")
    return float(value)


def evaluate(conditions: Conditions, answer: Answer) -> str | None:
    """None when every condition holds; else one line naming each that fails and what
    was seen, in the order of :data:`FIELDS` ("status is 'DOWN', expected 'UP'")."""
    failures = _json_failures(conditions.expect_json, answer)
    limit = conditions.max_latency_ms
    if limit is not None and answer.elapsed_ms > limit:
        failures.append(f"answered in {answer.elapsed_ms:.0f} ms, over {limit:g} ms")
    days = conditions.min_cert_days
    if days is not None and answer.cert_days is not None and answer.cert_days < days:
        until = f" (expires {answer.cert_expires:%Y-%m-%d})" if answer.cert_expires else ""
        failures.append(
            f"the TLS certificate has {answer.cert_days:.1f} days left{until}, under {days:g}"
        )
    return "; ".join(failures) or None


def _json_failures(items: tuple[JsonCondition, ...], answer: Answer) -> list[str]:
    if not items:
        return []
    if not answer.body_complete:
        return [f"expect_json: the body is longer than the {len(answer.body)} bytes read"]
    try:
        document = json.loads(answer.body)
    except (ValueError, RecursionError):
        return ["expect_json: the body is not JSON"]
    return [f for f in (c.failure(document) for c in items) if f is not None]


def same(seen: Any, wanted: Any) -> bool:
    """JSON equality: true is not 1 (Python's ``True == 1`` is), 1 is 1.0."""
    if isinstance(seen, bool) or isinstance(wanted, bool):
        return isinstance(seen, bool) and isinstance(wanted, bool) and seen == wanted
    if isinstance(seen, list) and isinstance(wanted, list):
        if len(seen) != len(wanted):
            return False
        return all(same(a, b) for a, b in zip(seen, wanted, strict=True))
    if isinstance(seen, dict) and isinstance(wanted, dict):
        return seen.keys() == wanted.keys() and all(same(seen[k], wanted[k]) for k in seen)
    return bool(type(seen) is type(wanted) or _numbers(seen, wanted)) and seen == wanted


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def show(value: Any) -> str:
    """A value as a message quotes it: a string in single quotes, anything else as JSON,
    cut to a few dozen characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "\u2026"


def describe(config: Mapping[str, Any]) -> list[str]:
    """The conditions of an http config as a person reads them (the status page's detail
    view), the status and body checks of http.py first; an invalid item is left out,
    since the source shows its own config error."""
    lines = [_status_line(config.get("expect_status"))]
    if isinstance(config.get("body_contains"), str):
        lines.append(f"body contains {show(config['body_contains'])}")
    for item in config.get("expect_json") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            continue
        if "exists" in item:
            verb = "exists" if item["exists"] is not False else "is absent"
            lines.append(f"JSON {item['path']} {verb}")
        else:
            lines.append(f"JSON {item['path']} equals {show(item.get('equals'))}")
    limit = config.get("max_latency_ms")
    if _numbers(limit):
        lines.append(f"answers within {limit:g} ms")
    days = config.get("min_cert_days")
    if _numbers(days):
        lines.append(f"TLS certificate valid for at least {days:g} more days")
    return lines


def _status_line(expected: Any) -> str:
    if isinstance(expected, int) and not isinstance(expected, bool):
        return f"HTTP status {expected}"
    if isinstance(expected, list) and expected:
        return "HTTP status " + " or ".join(str(c) for c in expected)
    return "HTTP status 2xx or 3xx"
