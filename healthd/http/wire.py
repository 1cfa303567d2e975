"""What the engine (engine.py) puts on and takes off the wire besides libcurl's own work:
the URL as libcurl takes it, header lines, the answer's headers, the certificate chain's
fields. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# what may stay as it is in a URL's path and query (requests' requote set): the rest,
# spaces and non-ASCII, is percent-encoded as aiohttp did; libcurl refuses them
_SAFE = "!#$%&'()*+,/:;=?@[]~"


def userinfo(url: str) -> tuple[str, str] | None:
    """The ``user:password@`` of a URL, decoded, or None."""
    if "@" not in url:
        return None
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def curl_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL as libcurl takes it, and its credentials apart. The common URL passes
    untouched; one with credentials, spaces or non-ASCII is taken apart as aiohttp (yarl)
    did: the last ``@`` ends the credentials, the host goes to IDNA, the path and query
    are percent-encoded."""
    if url.isascii() and "@" not in url and " " not in url:
        return url, None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise ValueError("malformed URL") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    target = urlunsplit(
        (parts.scheme, netloc, quote(parts.path, safe=_SAFE), quote(parts.query, safe=_SAFE), "")
    )
    return target, userinfo(url)


def header_lines(headers: Mapping[str, str]) -> list[str]:
    out = []
    for k, v in headers.items():
        if any(c in k for c in "\r\n\0:") or any(c in v for c in "\r\n\0"):
            raise ValueError(f"header {k!r}: a line break, NUL or colon does not belong there")
        # "Name:" would make libcurl drop the header; "Name;" sends it empty
        out.append(f"{k}: {v}" if v else f"{k};")
    return out


def parse_headers(lines: list[bytes]) -> tuple[tuple[str, str], ...]:
    """The last answer's header lines (after a 100 Continue, the real one's)."""
    out: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("latin-1").rstrip("\r\n")
        if line.startswith("HTTP/"):
            out = []
        elif ":" in line:
            k, _, v = line.partition(":")
            out.append((k.strip(), v.strip()))
    return tuple(out)


def cert_fields(info: Any) -> tuple[dict[str, str], ...]:
    out = []
    for cert in info or ():
        fields: dict[str, str] = {}
        for k, v in cert:
            key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
            fields[key] = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out.append(fields)
    return tuple(out)
