"""The JSON API's blueprints: sources, events, figures (uptime, latency), the original
/api/ai/* routes, operations (maintenance, the delivery log) and meta (health,
readiness, metrics, the OpenAPI document). Parse with web.params, read with data,
answer with web.render. May import statusapi.data, statusapi.web, statusapi.openapi
and healthd.core.
"""
