"""Every PostgreSQL advisory lock key healthd takes, declared here and nowhere else.

Keys share one space across every process on a database: two jobs given the same key
serialise against each other without meaning to (the pruner once shared the history
feed's key, so under a steady flow of transitions it gave up at its first try, and the
history grew without bound). tests/unit/test_locks.py checks they stay distinct.
"""

from __future__ import annotations

from typing import Final

# An arbitrary base ("healthd" spelt in hex-ish), shared by every healthd process.
MIGRATE: Final = 0x4EA17D  # healthd/store/migrate.py: one migration (or adoption) at a time
HISTORY: Final = 0x4EA17E  # healthd/store/status.py: history ids committed in id order
PRUNE: Final = 0x4EA17F  # healthd/store/retention.py: one pruner at a time
UPTIME_DAYS: Final = 0x4EA180  # healthd/store/uptimedays.py: one daily-uptime roller at a time

ALL: Final = {
    "MIGRATE": MIGRATE,
    "HISTORY": HISTORY,
    "PRUNE": PRUNE,
    "UPTIME_DAYS": UPTIME_DAYS,
}
