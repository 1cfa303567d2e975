"""How a notification target's URL is shown: what the API and the CLI may import without
the sender (and so without its HTTP client, Apprise and the store).

The one rule, everywhere a target is shown (`notifications list`, the delivery log, the
API, errors and log lines): an inline URL is its scheme and host only, and a URL given by
reference (``{"env": NAME}`` or ``{"file": PATH}``) is never read here: it is shown as the
reference. An Apprise URL's host is often its credential (tgram://BOT_TOKEN/CHAT,
discord://ID/TOKEN, opsgenie://API_KEY): its host is shown only where it names a host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from healthd.core.secrets import safe_url
from healthd.notify import formats

HIDDEN = "…"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def by_reference(ref: Any) -> str:
    """A URL given by reference, as it is shown: the reference, never what it holds."""
    if isinstance(ref, dict) and len(ref) == 1:
        kind, where = next(iter(ref.items()))
        if kind == "env":
            return f"(URL in ${where})"
        if kind == "file":
            return f"(URL in file {where})"
    return "(URL by reference)"


def authority(url: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) of ``url``, read by hand: an Apprise URL need not parse as a
    URL (tgram://123:ABC/ has a "port" that is not a number)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return None
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
        return scheme.lower(), f"[{host}]", port
    host, _, port = netloc.partition(":")
    return scheme.lower(), host.lower(), port


def names_a_host(host: str) -> bool:
    """Whether ``host`` is a host name or address (and so not a token in a host's place)."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    labels = bare.rstrip(".").split(".")
    return (
        len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and labels[-1].isalpha()
        and len(labels[-1]) >= 2
    )


def origin(url: str | None, ref: Any = None) -> str:
    """Scheme, host and port only: a Slack or Discord webhook URL's path is its secret, and
    an Apprise URL's host may be (then only its scheme is shown)."""
    if url is None:
        return by_reference(ref)
    if url.startswith(("http://", "https://")):
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "<invalid url>"
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}{port}"
    found = authority(url)
    if found is None:
        return "<invalid url>"
    scheme, host, port = found
    if not names_a_host(host):
        return f"{scheme}://{HIDDEN}"
    return f"{scheme}://{host}" + (f":{port}" if _PORT.match(port) else "")


def without_path(message: str, url: str | None) -> str:
    """An error message about ``url`` with its path taken out (stored and logged)."""
    if url is None:
        return message
    if url in message:
        message = message.replace(url, origin(url))
    if url.startswith(("http://", "https://")):
        message = message.replace(safe_url(url), origin(url))
    return message


def shown_url(url: str | None, fmt: str | None, ref: Any = None) -> str:
    """A target's URL as `notifications list` shows it: no credentials or query, and no
    path where the format keeps its secret there."""
    if url is None:
        return by_reference(ref)
    if formats.get(fmt).path_is_secret:
        shown = origin(url)
        return shown if shown.endswith(HIDDEN) else shown + "/..."
    return safe_url(url)


def shown_delivery(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery-log row as the CLI and the API show it: the URL as scheme and host only
    (or its reference), and the last error with the URL's path taken out."""
    ref = row.pop("url_ref", None)
    if row.get("last_error"):
        row["last_error"] = without_path(row["last_error"], row["url"])
    row["url"] = origin(row["url"], ref)
    return row
