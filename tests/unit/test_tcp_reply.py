"""The tcp plugin's search of a reply (healthd/plugins/tcp.py): each chunk once, a match
across two reads found, a reply that never matches read up to its limit only."""

from __future__ import annotations

import asyncio

import pytest

from healthd.plugins import tcp


def find(chunks: list[bytes], wanted: bytes, eof: bool = True) -> bool | None:
    async def go() -> bool | None:
        reader = asyncio.StreamReader()
        for c in chunks:
            reader.feed_data(c)
        if eof:
            reader.feed_eof()
        return await tcp._find(reader, wanted)

    return asyncio.run(go())


def test_a_match_split_across_reads_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "READ_SIZE", 3)  # every read ends inside the expected text
    assert find([b"ab+PO", b"NGcd"], b"+PONG") is True
    assert find([b"+", b"P", b"O", b"N", b"G"], b"+PONG") is True
    assert find([b"x+PON", b"x"], b"+PONG") is False
    assert find([b"aaab"], b"b") is True


def test_a_reply_without_the_text_is_read_to_the_limit_only() -> None:
    endless = [b"x" * 65536] * ((tcp.REPLY_LIMIT >> 16) + 4)
    assert find(endless, b"\n", eof=False) is None
