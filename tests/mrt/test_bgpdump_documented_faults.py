"""Element by element against bgpdump on the files where the MANIFEST documents a bgpdump
fault: every row is compared, and each documented fault is an explicit, explained exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rvcloud.mrt import DecodeStats
from tests.mrt.mrt_helpers import bgpdump_lines, compare_line, iter_rows


@pytest.mark.parametrize(
    ("name", "vpn_rows"),
    [
        # bgpdump: "process_mp_announce: unknown protocol(AFI=1, SAFI=128)" — it prints no VPNv4 routes.
        ("mrtparse__openbgpd_bgp", 6),
        ("mrtparse__quagga_bgp", 16),
        # bgpdump skips the two RIB_GENERIC (VPNv4) records silently.
        ("mrtparse__openbgpd_rib_table-v2", 2),
    ],
)
def test_all_but_the_vpn_rows_bgpdump_cannot_print(
    shared_mrt: Path, bgpdump_available: str, name: str, vpn_rows: int
) -> None:
    stats = DecodeStats()
    rows = list(iter_rows(shared_mrt / name, stats))
    vpn = [r for r in rows if r["safi"] == 128]
    assert len(vpn) == vpn_rows
    assert all(":" in r["prefix"] and r["prefix"].count(":") >= 2 for r in vpn)  # "RD:prefix"
    others = [r for r in rows if r["safi"] != 128]
    lines = list(bgpdump_lines(shared_mrt / name))
    assert len(others) == len(lines)
    for i, (row, line) in enumerate(zip(others, lines, strict=True)):
        assert compare_line(row, line) == [], f"line {i}: {line}"


def test_openbgpd_table_dump_v1_faults(shared_mrt: Path, bgpdump_available: str) -> None:
    """bgpdump reads the 8-byte AGGREGATOR of record 0 as 2-byte (0 253.232.192.168) and
    prints the IPv4 peer of AFI_IPv6 TABLE_DUMP records as c0a8:10a::."""
    stats = DecodeStats()
    rows = list(iter_rows(shared_mrt / "mrtparse__openbgpd_rib_table", stats))
    lines = list(bgpdump_lines(shared_mrt / "mrtparse__openbgpd_rib_table"))
    assert len(rows) == len(lines) == 31
    assert (rows[0]["aggregator_asn"], rows[0]["aggregator_ip"]) == (65000, "192.168.0.15")
    for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
        diffs = compare_line(row, line)
        allowed = []
        if i == 0:
            allowed.append("aggregator: ours=[65000, '192.168.0.15'] bgpdump=[0, '253.232.192.168']")
        if "|c0a8:10a::|" in line:
            assert row["peer_ip"] == "192.168.1.10"
            allowed.append("peer_ip: ours='192.168.1.10' bgpdump='c0a8:10a::'")
        assert diffs == allowed, f"line {i}: {line}"
