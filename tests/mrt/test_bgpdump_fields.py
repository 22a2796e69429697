"""Field-by-field comparison with Debian bgpdump -m -l, row by row, in order.

Compared: timestamp (with BGP4MP_ET microseconds), type, peer IP/AS, prefix (bgpdump's
unmasked prefixes are masked first), path id, AS path, origin, next hop, LOCAL_PREF,
MED (bgpdump's 0 = absent or 0), communities (well-known names mapped back),
large communities, AG/NAG and aggregator; STATE rows: old/new state. IPv6 addresses
are compared after RFC 5952 normalisation (bgpdump writes "::" for one zero group).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rvcloud.mrt import DecodeStats
from tests.mrt.mrt_helpers import bgpdump_lines, compare_line, iter_rows

pytestmark = pytest.mark.slow


def _compare(path: Path, drop: Callable[[str], bool] | None = None) -> tuple[int, DecodeStats]:
    stats = DecodeStats()
    ours = iter_rows(path, stats)
    n = 0
    bad: list[str] = []
    for line in bgpdump_lines(path):
        if drop is not None and drop(line):
            continue
        row = next(ours, None)
        assert row is not None, f"bgpdump has more lines than we have rows (at line {n}: {line})"
        diffs = compare_line(row, line)
        if diffs and len(bad) < 10:
            bad.append(f"line {n}: {line}\n    {diffs}")
        n += 1
    extra = sum(1 for _ in ours)
    assert not bad, "\n".join(bad)
    assert extra == 0, f"we have {extra} more rows than bgpdump lines"
    assert stats.invariant_ok()
    return n, stats


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
    n, _ = _compare(shared_mrt / name)
    assert n == expected


@pytest.mark.parametrize(
    "name",
    [
        "bgpdump__bview.20020722.2337.gz",
        "bgpdump__bview.64k_stream_overflow.gz",
        "bgpdump__bview.ipv4_unicast_add_path.gz",
        "bgpdump__bview.ipv6_unicast_add_path.gz",
        "bgpdump__updates.20020722.2238.gz",
        "bgpdump__updates.20070211.0141.gz",
        "bgpdump__updates.20071015.1505.gz",
        "bgpdump__updates.20100722.2015.gz",
        "bgpdump__updates.20160811.1600.gz",
        "bgpdump__updates.et-header.2015.gz",
        "bgpdump__updates.long_withdrawal.gz",
        "bgpdump__updates.nlri_mask_trailing_bits.gz",
        "bgpkit__local_only__updates.bz2",
        "bgpkit__rrc00__updates.19990903.1041.gz",
        "bgpkit__rrc00__updates.19991214.1621.gz",
        "bgpkit__rrc03__updates.20100227.1600.first-796-records.gz",
        "bgpkit__rrc15__updates.20100227.1610.gz",
        "libbgpstream__ris.rrc06.updates.1427846400.gz",
        "libbgpstream__routeviews.route-views.jinx.updates.1401493500.bz2",
        "libbgpstream__routeviews.route-views.jinx.updates.1427846400.bz2",
        "libbgpstream__updates.example.bz2",
        "mrtparse__bird-mrtdump_bgp",
        "mrtparse__bird-mrtdump_rib",
        "mrtparse__bird6-mrtdump_bgp",
        "mrtparse__bird6-mrtdump_rib",
        "mrtparse__quagga_bgp_large_communities",
        "mrtparse__quagga_rib",
        "pyasn__rib.20080501.0644_firstMB.bz2",
        "pyasn__rib.20140523.0600_firstMB.bz2",
        "pyasn__rib6.20151101.0600_firstMB.bz2",
    ],
)
def test_other_files_match_bgpdump(shared_mrt: Path, bgpdump_available: str, name: str) -> None:
    n, _ = _compare(shared_mrt / name)
    assert n > 0


def test_zebra_file_matches_bgpdump_except_fabricated_states(
    shared_mrt: Path, bgpdump_available: str
) -> None:
    # bgpdump turns each 8-byte STATE_CHANGE into a STATE line for peer 0.0.0.0 AS 0; we skip them.
    n, stats = _compare(
        shared_mrt / "bgpkit__rrc01__updates.20001104.0124.gz", drop=lambda line: "|STATE|0.0.0.0|0|" in line
    )
    assert n == 378 + 141 + 322
    assert stats.skipped_by_reason["short_state_change"] == 42
