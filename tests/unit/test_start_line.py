"""The daemon's start line is the original's, byte for byte (scripts grep it)."""

from __future__ import annotations

from healthd.daemon.lines import start_line

ORIGINAL = (
    "Health check service started (30s interval, silent mode, DB sync enabled, debounce active)"
)


def test_default_interval_is_the_original_line() -> None:
    assert start_line(30.0) == ORIGINAL
    assert start_line(30) == ORIGINAL


def test_configured_interval_is_shown_without_a_trailing_zero() -> None:
    assert start_line(5.0).startswith("Health check service started (5s interval, ")
    assert start_line(0.5).startswith("Health check service started (0.5s interval, ")
    assert start_line(2.25).endswith(
        "(2.25s interval, silent mode, DB sync enabled, debounce active)"
    )
