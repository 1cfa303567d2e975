"""Query-parameter readers: a bad value is a 400 naming the parameter."""

from __future__ import annotations

import base64
import binascii

from flask import request

from statusapi.errors import ApiError

STATUSES = ("unknown", "connected", "disconnected", "error")


def bad(name: str, problem: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{name}: {problem}")


def integer(name: str, default: int | None, lo: int, hi: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(name, f"must be an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise bad(name, f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}")
    return value


def boolean(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad(name, "must be true or false")


def statuses(name: str = "status") -> list[str] | None:
    raw = request.args.get(name)
    if not raw:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    for v in values:
        if v not in STATUSES:
            raise bad(name, f"unknown status {v!r} (one of {', '.join(STATUSES)})")
    return values


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def cursor(name: str = "cursor") -> str | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not 0 < len(value) <= 50:
        raise bad(name, "is not a cursor this API returned")
    return value
