"""The live streams: Server-Sent Events fed by one history tail per worker (sse) and the
WebSocket that carries the same events (ws). May import statusapi.data, statusapi.web
and healthd.core.
"""
