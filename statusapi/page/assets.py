"""The page's static files (static/: the stylesheet, the script, the favicon), served from
memory: read once per worker, gzip-compressed once, each URL carrying a hash of the
content so it is cached for a day and a new release is fetched at once.

Flask's own static view sends the file as it is; the HTML next to it was compressed
(statusapi/page/views.py) but the CSS and JS were not, which is most of a first visit's
bytes on a short page.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request, url_for

from statusapi.web.errors import ApiError

MAX_AGE = 86400
GZIP_OVER = 1000  # smaller files (the favicon) gain less than the header costs


@dataclass(frozen=True)
class Asset:
    body: bytes
    zipped: bytes | None  # None: not worth compressing
    mimetype: str
    version: str  # a hash of the content: the URL's ?v= and the ETag

    def etag(self, zipped: bool) -> str:
        # each encoding is a different representation, so a different strong tag
        return f'"{self.version}{"-gz" if zipped else ""}"'


def load(folder: Path) -> dict[str, Asset]:
    out = {}
    for p in sorted(folder.glob("*")):
        if not p.is_file():
            continue
        body = p.read_bytes()
        zipped = gzip.compress(body, compresslevel=9, mtime=0) if len(body) > GZIP_OVER else None
        mimetype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        if mimetype.startswith("text/") or mimetype.endswith("javascript"):
            mimetype += "; charset=utf-8"
        version = hashlib.blake2b(body, digest_size=6).hexdigest()
        out[p.name] = Asset(body, zipped, mimetype, version)
    return out


def serve(assets: dict[str, Asset], filename: str) -> Response:
    asset = assets.get(filename)
    if asset is None:
        raise ApiError(404, "not_found", f"no static file {filename!r}")
    zipped = asset.zipped is not None and "gzip" in request.headers.get("Accept-Encoding", "")
    tag = asset.etag(zipped)
    wanted = request.headers.get("If-None-Match", "")
    status = 304 if tag in (w.strip().removeprefix("W/") for w in wanted.split(",")) else 200
    body = b"" if status == 304 else (asset.zipped if zipped else asset.body) or b""
    resp = Response(body, status, content_type=asset.mimetype)
    resp.headers["ETag"] = tag
    resp.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    resp.headers["Vary"] = "Accept-Encoding"
    if zipped and status == 200:
        resp.headers["Content-Encoding"] = "gzip"
    return resp


def init_app(app: Flask) -> None:
    assets = load(Path(app.static_folder or ""))
    app.view_functions["static"] = lambda filename: serve(assets, filename)

    def asset(name: str) -> str:
        found = assets.get(name)
        return url_for("static", filename=name, v=found.version if found else "0")

    app.jinja_env.globals["asset"] = asset
