"""Every SQL statement the daemon and the CLI run, split by job:

- ``catalog``: what the CLI reads and writes (sources, webhooks, maintenance, status);
- ``migrate``: the numbered files in migrations/, applied in order;
- ``deliverylog``: the delivery log's query, shared with the API's data package;
- ``codec``: results, observations and debounce state to and from columns;
- ``buffers``: what is not written yet, kept through an outage (pure);
- ``writer``: the writer thread, its connection and the outage handling;
- ``status``: the status/transition SQL of one batch; ``refusals``: a refused batch
  written again row by row; ``rollbuf``: latency sums per source and minute (pure);
- ``leases``: shard leases and the heartbeat (the fair share is pure);
- ``keeper``: renews the leases from a thread and connection of its own;
- ``outbox``: the webhook outbox; ``retention``: pruning in small batches;
- ``facade``: ``Store``, the daemon's one handle on all of it.

May import healthd.core, healthd.config and healthd.plugins (to validate and redact
what it stores); nothing of the daemon, the notifications or the CLI. Importing the
package imports none of its modules, so a reader of one module (the API reads
``deliverylog``) pays for that module only.
"""
