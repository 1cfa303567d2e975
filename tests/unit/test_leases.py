"""The fair-share arithmetic of shard leases, without a database."""

from __future__ import annotations

import pytest

from healthd.store.leases import fair_share, rebalance


@pytest.mark.parametrize(
    ("total", "live", "share"), [(64, 1, 64), (64, 2, 32), (64, 3, 22), (64, 64, 1), (64, 100, 1)]
)
def test_the_fair_share_rounds_up(total: int, live: int, share: int) -> None:
    assert fair_share(total, live) == share


def test_no_live_daemon_counts_as_one() -> None:
    assert fair_share(64, 0) == 64


def test_under_the_share_takes_the_difference() -> None:
    assert rebalance(set(range(10)), 64, 2) == (22, [])


def test_over_the_share_hands_back_the_highest_shards() -> None:
    assert rebalance(set(range(64)), 64, 2) == (0, list(range(32, 64)))


def test_at_the_share_nothing_moves() -> None:
    assert rebalance(set(range(32)), 64, 2) == (0, [])


def test_every_shard_has_a_taker_whatever_the_split() -> None:
    for live in range(1, 70):
        assert fair_share(64, live) * live >= 64
