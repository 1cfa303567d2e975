"""The status page people look at: the views (/status, /status/<id>), the badges, what a
row, a bar and a chart look like (pageview: pure), the SVG and shields JSON badge
(badge_svg: pure), the per-worker 90-day timelines, the static files served from memory
and gzip-compressed (assets), and the templates/ and static/ it serves. May import
statusapi.data, statusapi.web and healthd.core.
"""
