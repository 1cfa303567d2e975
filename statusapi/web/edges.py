"""Answers at the edges of routing, in JSON like every other answer.

- No redirects: ``/api/v1/sources//events`` is a 404, not a 308 to a merged path (an id
  is never empty and never holds a slash, see healthd.config.sources.ID_RE).
- ``OPTIONS`` on a route answers ``{"methods": [...]}`` with ``Allow`` (Flask's automatic
  answer is an empty text/html body).
"""

from __future__ import annotations

from flask import Flask, Response

from statusapi.web.render import json_response


def init_app(app: Flask) -> None:
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    automatic = app.make_default_options_response

    def options_response() -> Response:
        methods = sorted(automatic().allow)
        resp = json_response({"methods": methods})
        resp.headers["Allow"] = ", ".join(methods)
        return resp

    app.make_default_options_response = options_response  # type: ignore[method-assign]
