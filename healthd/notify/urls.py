"""How a subscriber's URL is shown: what the API and the CLI may import without the sender
(and so without its HTTP client and the store)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from healthd.core.secrets import safe_url
from healthd.notify import formats


def origin(url: str) -> str:
    """Scheme, host and port only: a Slack or Discord webhook URL's path is its secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def without_path(message: str, url: str) -> str:
    """An error message about ``url`` with its path taken out (stored and logged)."""
    return message.replace(safe_url(url), origin(url))


def shown_url(url: str, fmt: str | None) -> str:
    """A subscriber's URL as `webhooks list` shows it: no credentials or query, and no path
    where the format keeps its secret there."""
    if formats.get(fmt).path_is_secret:
        return origin(url) + "/..."
    return safe_url(url)


def shown_delivery(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery-log row as the CLI and the API show it: the URL as scheme and host only,
    and the last error with the URL's path taken out."""
    if row.get("last_error"):
        row["last_error"] = without_path(row["last_error"], row["url"])
    row["url"] = origin(row["url"])
    return row
