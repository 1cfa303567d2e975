"""The web plumbing under every route: settings (config), JSON errors (errors), edge
routes (edges: OPTIONS, `//`), strict query parameters (params), JSON rendering with
ETags (render), the request counters summed over gunicorn workers (multiproc) and the
gunicorn worker class that answers gunicorn's own errors in JSON. May import healthd.core
and healthd.config; nothing else of statusapi.
"""
