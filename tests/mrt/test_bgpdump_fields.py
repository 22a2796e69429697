"""Field-by-field comparison with Debian bgpdump -m on a full RIB and a modern updates file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvcloud.mrt import DecodeStats
from tests.mrt.mrt_helpers import bgpdump_lines, compare_line, iter_rows

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2", 503_590),
        ("mrtparser__updates.20260222.1530.bz2", 118_663),
    ],
)
def test_every_row_matches_bgpdump(
    shared_mrt: Path, bgpdump_available: str, name: str, expected: int
) -> None:
    path = shared_mrt / name
    stats = DecodeStats()
    ours = iter_rows(path, stats)
    n = 0
    bad: list[str] = []
    for line in bgpdump_lines(path):
        row = next(ours, None)
        assert row is not None, f"bgpdump has more lines than we have rows (at line {n})"
        diffs = compare_line(row, line)
        if diffs and len(bad) < 10:
            bad.append(f"line {n}: {line}\n    {diffs}")
        n += 1
    assert next(ours, None) is None, "we have more rows than bgpdump lines"
    assert not bad, "\n".join(bad)
    assert n == expected
    assert stats.invariant_ok()
