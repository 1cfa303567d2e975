"""The URL forms docs/notifications.md gives for the common targets are ones Apprise (as
pinned in pyproject.toml) accepts, and none of them is shown with its credential."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from healthd.notify import apprise_target
from healthd.notify.urls import shown_url

DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
FORMS = re.findall(r"^\| [^|]+ \| `([a-z]+s?://[^`]+)` \|$", DOC.read_text(), re.M)


def test_the_doc_lists_the_common_targets() -> None:
    schemes = {f.partition("://")[0] for f in FORMS}
    wanted = {"mailto", "mailtos", "slack", "discord", "tgram", "workflows", "ntfy", "ntfys"}
    assert wanted | {"gotifys", "pagerduty", "opsgenie"} <= schemes, schemes


@pytest.mark.parametrize("url", FORMS)
def test_each_documented_url_is_one_apprise_can_use(url: str) -> None:
    apprise_target.check(url)
    shown = shown_url(url, "apprise")
    for secret in ("PASSWORD", "app-password", "TIiajk", "xoxb", "JHMHI8", "AABCdef", "tk_"):
        assert secret not in shown, shown
