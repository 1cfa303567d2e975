"""Advisory lock keys (healthd/store/locks.py): one declaration, no two jobs on one key."""

from __future__ import annotations

from healthd.store import locks, migrate, retention, status, uptimedays


def test_every_advisory_lock_key_is_distinct() -> None:
    assert len(set(locks.ALL.values())) == len(locks.ALL)


def test_every_user_takes_its_key_from_the_one_list() -> None:
    assert migrate.LOCK_KEY == locks.MIGRATE
    assert status.HISTORY_LOCK == locks.HISTORY
    assert retention.LOCK_KEY == locks.PRUNE
    assert uptimedays.LOCK_KEY == locks.UPTIME_DAYS
    assert retention.LOCK_KEY != status.HISTORY_LOCK  # the pruner never waits on the feed


def test_no_other_module_declares_a_key_of_its_own() -> None:
    """Any module that takes an advisory lock names a key from locks.py."""
    import re
    from pathlib import Path

    import healthd

    root = Path(healthd.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        if path.name != "locks.py":
            # any key of the 0x4EA1xx family spelt outside locks.py
            assert not re.search(r"0X4EA1[0-9A-F]{2}", text.upper()), path
