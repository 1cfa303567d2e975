"""The OpenAPI 3.1 document of every route (document), its component schemas and helpers
(parts) and the status page's routes (pages). Derived from healthd.core.fields and the
format registry where they say it. May import healthd.core, healthd.notify.formats and
statusapi.page.badge_svg (the badge styles; pure).
"""
