"""Query-parameter readers: a bad value is a 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Iterable

from flask import request

from healthd.core.words import STATUSES as STATUSES
from statusapi.web.errors import ApiError


def bad(name: str, problem: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{name}: {problem}")


BIGINT_MAX = 2**63 - 1  # history ids are bigint
INT_MAX = 2**31 - 1  # webhook ids are serial (integer)


def _single(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise bad(name, "given more than once")
    return values[0] if values else None


def integer(name: str, default: int | None, lo: int, hi: int = BIGINT_MAX) -> int | None:
    raw = _single(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(name, f"must be an integer, got {raw!r}") from None
    if value < lo or value > hi:
        raise bad(name, f"must be between {lo} and {hi}")
    return value


def boolean(name: str) -> bool | None:
    raw = _single(name)
    if raw is None:
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise bad(name, "must be true or false")


def text(name: str) -> str | None:
    return _single(name) or None


def statuses(name: str = "status") -> list[str] | None:
    raw = _single(name)
    if raw is None:
        return None
    values = raw.split(",")
    for v in values:
        if v not in STATUSES:
            raise bad(
                name, f"unknown status {v!r} (a comma-separated list of {', '.join(STATUSES)})"
            )
    return values


def cursor(name: str = "cursor") -> str | None:
    """The list's cursor is the last id of the previous page (ids are unique and ordered)."""
    raw = _single(name)
    if raw is None:
        return None
    if not 0 < len(raw) <= 50:
        raise bad(name, "must be 1 to 50 characters (the last id of the previous page)")
    return raw


def choice(name: str, choices: Iterable[str], default: str) -> str:
    """One of ``choices``, ``default`` when the parameter is absent. Present but empty is
    a 400 like any other value not in the list (an empty ``window=`` is not "1h")."""
    raw = _single(name)
    if raw is None:
        return default
    allowed = list(choices)
    if raw not in allowed:
        raise bad(name, f"must be one of {', '.join(allowed)}")
    return raw
