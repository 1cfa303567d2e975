"""The API's Source shape per row: the generated function (statusapi/data/shapes.py) against
the plain-Python ways to write it. No database: one representative row.

Run: python tests/bench/bench_shape.py
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from healthd.core import fields
from statusapi.data import shapes
from statusapi.data.queries import SOURCE_INDEX as AT
from statusapi.data.shapes import redacted_config

Shape = Callable[[tuple[Any, ...]], dict[str, Any]]


def sample_row() -> tuple[Any, ...]:
    row: list[Any] = [None] * len(AT)
    text = {"id": "web", "name": "Web", "plugin": "http", "type": "service"}
    for name, i in AT.items():
        row[i] = text.get(name)
    row[AT["enabled"]] = True
    for name in fields.API_SECRET:
        row[AT[name]] = json.dumps({"url": "http://127.0.0.1/", "headers": {"Authorization": "x"}})
    row[AT["pending_status"]], row[AT["pending_count"]], row[AT["pending_needed"]] = "error", 1, 3
    for name in ("last_tested_at", "status_changed_at", "created_at", "updated_at"):
        if name in AT:
            row[AT[name]] = datetime.now(UTC)
    return tuple(row)


def with_itemgetter() -> Shape:
    names = fields.API_PLAIN
    get = itemgetter(*(AT[n] for n in names))
    plugin = AT["plugin"]
    ps, pc, pn = AT["pending_status"], AT["pending_count"], AT["pending_needed"]
    secrets = tuple((n, AT[n]) for n in fields.API_SECRET)

    def shape(r: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(names, get(r), strict=True))
        d["pending"] = {"status": r[ps], "count": r[pc], "needed": r[pn]} if r[ps] else None
        for n, i in secrets:
            d[n] = redacted_config(r[plugin], r[i])
        return d

    return shape


def with_comprehension() -> Shape:
    pairs = tuple((n, AT[n]) for n in fields.API_PLAIN)
    plugin = AT["plugin"]
    ps, pc, pn = AT["pending_status"], AT["pending_count"], AT["pending_needed"]
    secrets = tuple((n, AT[n]) for n in fields.API_SECRET)

    def shape(r: tuple[Any, ...]) -> dict[str, Any]:
        d = {n: r[i] for n, i in pairs}
        d["pending"] = {"status": r[ps], "count": r[pc], "needed": r[pn]} if r[ps] else None
        for n, i in secrets:
            d[n] = redacted_config(r[plugin], r[i])
        return d

    return shape


def main() -> None:
    row = sample_row()
    shapes_: dict[str, Shape] = {
        "generated (shapes.source)": shapes.source,
        "itemgetter + zip": with_itemgetter(),
        "dict comprehension": with_comprehension(),
    }
    for fn in shapes_.values():
        assert fn(row) == shapes.source(row) and list(fn(row)) == list(shapes.source(row))
    best = dict.fromkeys(shapes_, float("inf"))
    for _ in range(7):  # interleaved, so a burst of load elsewhere hits every variant alike
        for name, fn in shapes_.items():
            runs = timeit.repeat(lambda fn=fn: fn(row), number=100_000, repeat=3)
            best[name] = min(best[name], min(runs) / 100_000)
    base = best["generated (shapes.source)"]
    for name, t in best.items():
        print(f"{name:28} {t * 1e6:5.2f} us/row  {t / base:4.2f}x")


if __name__ == "__main__":
    main()
