"""`maintenance add --every` in odd forms: a word that only starts like a day, or a time
with its own UTC offset, is refused rather than read as something else."""

from __future__ import annotations

from datetime import time

import pytest

from healthd.core import maintenance
from healthd.core.errors import ConfigError


@pytest.mark.parametrize(
    "odd",
    [
        "mon-fri 02:00",  # read as Monday only: four of five nights without a window
        "monkey 02:00",
        "sundae 02:00",
        "satan 02:00",
        "weekdays 02:00",
        "daily 02:00+05:00",  # an offset beside --tz / the zone: which one holds?
        "sun 02:00Z",
    ],
)
def test_every_refuses_what_only_looks_like_a_day_or_carries_an_offset(odd: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        maintenance.parse_every(odd)


def test_every_takes_day_names_short_and_long_in_any_case() -> None:
    assert maintenance.parse_every("Wednesday 01:00") == (3, time(1, 0), None)
    assert maintenance.parse_every("THU 01:00") == (4, time(1, 0), None)
    assert maintenance.parse_every("sat 23:59 UTC") == (6, time(23, 59), "UTC")
