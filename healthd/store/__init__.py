"""Every SQL statement the daemon runs, split by job:

- ``codec``: results, observations and debounce state to and from columns;
- ``buffers``: what is not written yet, kept through an outage (pure);
- ``writer``: the writer thread, its connection and the outage handling;
- ``status``: the status/transition SQL of one batch;
- ``leases``: shard leases and the heartbeat (the fair share is pure);
- ``keeper``: renews the leases from a thread and connection of its own;
- ``outbox``: the webhook outbox;
- ``facade``: ``Store``, the daemon's one handle on all of it.
"""

from healthd.store.buffers import MAX_EVENTS, Buffers, carry
from healthd.store.codec import Pending, ResultRow, obs_from_json, obs_json, state_from_row, ts
from healthd.store.facade import SOURCE_COLUMNS, Store
from healthd.store.writer import Unavailable

__all__ = [
    "MAX_EVENTS",
    "SOURCE_COLUMNS",
    "Buffers",
    "Pending",
    "ResultRow",
    "Store",
    "Unavailable",
    "carry",
    "obs_from_json",
    "obs_json",
    "state_from_row",
    "ts",
]
