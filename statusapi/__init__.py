"""statusapi: the read-only HTTP face of healthd. Served as `gunicorn 'statusapi:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from statusapi import config, db, edges, errors, middleware
    from statusapi.views import (
        ai,
        badges,
        events,
        figures,
        meta,
        operations,
        page,
        sources,
        stream,
        ws,
    )

    app = Flask(__name__)
    app.config.update(config.from_env())
    if test_config:
        app.config.update(test_config)
    db.init_app(app)
    errors.init_app(app)
    middleware.init_app(app)
    edges.init_app(app)
    page.init_app(app)
    for bp in (sources.bp, events.bp, stream.bp, ai.bp, meta.bp, operations.bp):
        app.register_blueprint(bp)
    for bp in (figures.bp, page.bp, badges.bp, ws.bp):  # issue 11: the page and its figures
        app.register_blueprint(bp)
    return app
