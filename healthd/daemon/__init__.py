"""`healthd run`: the probe loop (loop), the due-time heap (dispatch), which sources are
this daemon's (sourcesync), the spool, the supervisor of `--workers N` and what it shares
with its workers (supervised), the log lines (lines), the job wrapper, logging setup and
sd_notify. May import healthd.core, healthd.config, healthd.plugins, healthd.store and
healthd.notify; nothing above it (local, cli) and nothing of statusapi.
"""
