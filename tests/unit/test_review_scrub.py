"""A short user name or password of a URL given by reference is scrubbed where it stands
as a word of an answer, not inside other words: with the user ``u`` every delivery error
read "timed o***t" and "***se the final URL"."""

from __future__ import annotations

from healthd.notify import apprise_target


def test_a_short_credential_is_scrubbed_as_a_word_not_inside_words() -> None:
    url = "http://u:pw@hooks.example.com/hook"
    assert (
        apprise_target.scrub("timed out after 10 s; use the final URL", url)
        == "timed out after 10 s; use the final URL"
    )
    assert apprise_target.scrub("login u failed (pw), u:pw refused", url) == (
        "login *** failed (***), ***:*** refused"
    )
