"""Webhook retry backoff and body signature: pure functions."""

from __future__ import annotations

import hashlib
import hmac
import random

from healthd.notify.formats import body_of, signature
from healthd.notify.sender import MAX_DELAY, backoff


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff(n, rng) for n in range(1, 16)]
    assert all(1.0 <= d for d in delays) and max(delays) <= MAX_DELAY
    assert delays[0] <= 2.0 and delays[5] >= 32.0  # 2 s doubling, at least half of each step
    assert len({round(backoff(3, random.Random(s)), 6) for s in range(5)}) > 1  # jitter


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = body_of({"b": 1, "a": [1, 2]})
    assert body == b'{"a":[1,2],"b":1}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
