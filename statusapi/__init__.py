"""statusapi: the read-only HTTP face of healthd. Served as `gunicorn 'statusapi:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from statusapi import middleware
    from statusapi.api import ai, events, figures, meta, operations, sources
    from statusapi.data import db
    from statusapi.page import badges
    from statusapi.page import views as page
    from statusapi.stream import sse, ws
    from statusapi.web import config, edges, errors

    # the page's templates and static files live with the page package
    app = Flask(__name__, template_folder="page/templates", static_folder="page/static")
    app.config.update(config.from_env())
    if test_config:
        app.config.update(test_config)
    db.init_app(app)
    errors.init_app(app)
    middleware.init_app(app)
    edges.init_app(app)
    page.init_app(app)
    for bp in (sources.bp, events.bp, sse.bp, ai.bp, meta.bp, operations.bp):
        app.register_blueprint(bp)
    for bp in (figures.bp, page.bp, badges.bp, ws.bp):  # the page and its figures
        app.register_blueprint(bp)
    return app
