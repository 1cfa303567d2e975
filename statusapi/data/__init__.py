"""Data access: the per-worker read-only pool (db), every SQL statement the API runs
(queries), rows -> JSON (shapes), uptime and latency figures (figures) and the uptime
rule (uptime: pure). Read-only: nothing here needs a primary. May import healthd.core,
healthd.plugins (redaction) and healthd.store.deliverylog (SQL text only).
"""
