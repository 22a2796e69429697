"""Every MANIFEST disagreement between reference parsers that we resolve, with our value asserted."""

from __future__ import annotations

import ipaddress
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rvcloud.mrt import DecodeStats, mrt_kind
from tests.mrt.mrt_helpers import decode_file


def _decode(shared_mrt: Path, name: str) -> tuple[list[dict[str, Any]], DecodeStats]:
    rows, stats = decode_file(shared_mrt / name)
    assert stats.invariant_ok(), stats.to_dict()
    return rows, stats


def _types(rows: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(r["elem_type"] for r in rows))


def _valid_prefix(text: str) -> bool:
    try:
        ipaddress.ip_network(text)  # strict: host bits must be zero
    except ValueError:
        return False
    return True


def _bgpdump_h_withdrawals(bgpdump: str, path: Path) -> list[str]:
    """Withdrawn prefixes from ``bgpdump -H`` (right for type 5, unlike -m)."""
    out = subprocess.run([bgpdump, "-H", str(path)], capture_output=True, text=True, check=True).stdout
    prefixes: list[str] = []
    in_w = False
    for line in out.splitlines():
        if line == "WITHDRAW":
            in_w = True
        elif in_w and line.startswith("  "):
            prefixes.append(line.strip())
        else:
            in_w = False
    return prefixes


@pytest.mark.parametrize("name", ["mrtparse__bird_bgp", "mrtparse__bird6_bgp"])
def test_bird_addpath_nlri_without_addpath_subtype(shared_mrt: Path, name: str) -> None:
    rows, stats = _decode(shared_mrt, name)
    ann = [r for r in rows if r["elem_type"] == "ANNOUNCE"]
    assert len(ann) == 14  # bgpdump: 24 / 32 bogus routes read from path ids
    assert not any(r["prefix"] in ("0.0.0.0/0", "::/0") for r in ann)
    assert {r["path_id"] for r in ann} == {1, 2}
    assert all(_valid_prefix(r["prefix"]) for r in ann)
    assert stats.skipped_by_reason["note:addpath_nlri_detected"] == 6
    assert _types(rows)["STATE"] == 12


def test_bird_real_addpath_subtype_unchanged(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "mrtparse__bird-mrtdump_bgp")
    assert _types(rows) == {"ANNOUNCE": 12, "STATE": 12}
    assert "note:addpath_nlri_detected" not in stats.skipped_by_reason


def test_long_withdrawal_rfc8654(shared_mrt: Path) -> None:
    rows, _ = _decode(shared_mrt, "bgpdump__updates.long_withdrawal.gz")
    assert _types(rows) == {"WITHDRAW": 4096}  # bgpkit: 0
    prefixes = {r["prefix"] for r in rows}
    assert len(prefixes) == 4096
    net = ipaddress.ip_network("2001:db8::/32")
    assert all(ipaddress.ip_network(p).subnet_of(net) and p.endswith("/64") for p in prefixes)  # type: ignore[arg-type]
    assert {(r["afi"], r["safi"], r["peer_asn"]) for r in rows} == {(2, 1, 65531)}


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("bgpkit__rrc00__updates.19991214.1621.gz", {"ANNOUNCE": 54126, "WITHDRAW": 1363, "STATE": 27}),
        ("bgpkit__rrc00__updates.19990903.1041.gz", {"ANNOUNCE": 65286, "WITHDRAW": 25, "STATE": 4}),
    ],
)
def test_legacy_bgp_type5_withdrawals_carry_real_prefixes(
    shared_mrt: Path, bgpdump_available: str, name: str, counts: dict[str, int]
) -> None:
    rows, stats = _decode(shared_mrt, name)
    assert _types(rows) == counts
    withdrawn = [r for r in rows if r["elem_type"] == "WITHDRAW"]
    # bgpdump -m prints the peer address in place of these; -H shows the real ones.
    assert [r["prefix"] for r in withdrawn] == _bgpdump_h_withdrawals(bgpdump_available, shared_mrt / name)
    assert all(r["prefix"] != r["peer_ip"] + "/32" for r in withdrawn)
    assert mrt_kind(stats) == "UPDATES"
    assert stats.mrt_types["BGP/UPDATE"] > 0


def test_early_ris_table_dump_reframed_plus4(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "bgpkit__rrc00__bview.20000111.0032.gz")
    assert len(rows) == 452_018  # strict framing (bgpdump, mrtparse, bgpkit): 1
    assert stats.records_read == 2490
    assert stats.skipped_by_reason == {"note:td1_length_plus_4": 2490}
    assert len({r["peer_ip"] for r in rows}) == 7
    assert len({r["prefix"] for r in rows}) == 82_377
    ts = {r["timestamp"] // 1_000_000 for r in rows}
    assert min(ts) == 947550744 and max(ts) == 947550745  # 2000-01-11T00:32:24Z..25Z
    assert stats.truncated_at is None


@pytest.mark.parametrize(
    ("name", "rib_rows", "decompressed"),
    [
        ("pyasn__rib.20140523.0600_firstMB.bz2", 270_005, 15_274_550),
        ("pyasn__rib.20080501.0644_firstMB.bz2", 139_291, 9_876_188),
        ("pyasn__rib6.20151101.0600_firstMB.bz2", 149_578, 12_132_997),
    ],
)
def test_truncated_bzip2_keeps_complete_records(
    shared_mrt: Path, name: str, rib_rows: int, decompressed: int
) -> None:
    rows, stats = _decode(shared_mrt, name)
    assert _types(rows) == {"RIB": rib_rows}
    assert stats.truncated_at == decompressed
    assert stats.skipped_by_reason["truncated_record"] == 1
    assert any("truncated_record" in e for e in stats.first_errors)
    assert any("ended early" in e for e in stats.first_errors)


def test_nlri_host_bits_and_dangling_byte(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "bgpdump__updates.nlri_mask_trailing_bits.gz")
    assert [r["prefix"] for r in rows] == ["11.8.0.0/13"]  # Debian bgpdump: 11.13.0.0/13
    assert rows[0]["elem_type"] == "ANNOUNCE"
    assert rows[0]["peer_ip"] == "12.0.1.63" and rows[0]["peer_asn"] == 7018
    assert stats.skipped_by_reason["note:nlri_malformed_tail"] == 1


def test_zebra_short_state_change_and_truncated_open(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "bgpkit__rrc01__updates.20001104.0124.gz")
    # bgpdump fabricates 42 STATE lines (peer 0.0.0.0 AS 0); bgpkit stops at record 34.
    assert _types(rows) == {"ANNOUNCE": 378, "WITHDRAW": 141, "STATE": 322}
    assert stats.skipped_by_reason["short_state_change"] == 42
    assert stats.skipped_by_reason["truncated_open"] == 21
    assert all(r["peer_ip"] != "0.0.0.0" for r in rows)
    assert stats.records_read == 1286


def test_damaged_framing_resync(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "bgpkit__rrc00__updates.20000325.0345.gz")
    first = [(r["record_index"], r["elem_type"], r["prefix"]) for r in rows if r["record_index"] < 4]
    assert first == [
        (0, "WITHDRAW", "24.216.16.0/24"),
        (0, "WITHDRAW", "203.18.151.0/24"),
        (2, "ANNOUNCE", "204.92.84.0/24"),
        (3, "ANNOUNCE", "194.141.31.0/24"),
    ]
    # bgpdump turns the damaged record 4 into 2,042 bogus withdrawals (e.g. 0.5.0.3/117) and stops;
    # we skip the damage and recover the rest of the 15-minute file.
    assert all(_valid_prefix(r["prefix"]) for r in rows if r["prefix"])
    assert _types(rows) == {"ANNOUNCE": 4660, "WITHDRAW": 718, "STATE": 307}
    assert stats.skipped_by_reason["bytes:resync_skipped"] == 24
    assert any("resynced at 198" in e for e in stats.first_errors)
    ts = [r["timestamp"] // 1_000_000 for r in rows]
    assert min(ts) >= 953955943 and max(ts) <= 953955943 + 900


def test_bgp4mp_entry_decoded(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "mrtparse__openbgpd_rib_table-mp")
    assert _types(rows) == {"RIB": 31}  # no oracle decodes BGP4MP_ENTRY
    assert Counter((r["peer_ip"], r["peer_asn"]) for r in rows) == {
        ("192.168.1.10", 65000): 21,
        ("2001:db8:0:1::10", 65000): 10,
    }
    assert rows[0]["prefix"] == "192.168.0.0/16" and rows[0]["next_hop"] == "192.168.0.15"
    assert mrt_kind(stats) == "RIB"


def test_rib_generic_vpnv4(shared_mrt: Path) -> None:
    rows, _ = _decode(shared_mrt, "mrtparse__openbgpd_rib_table-v2")
    assert _types(rows) == {"RIB": 33}  # bgpdump and bgpkit skip the 2 RIB_GENERIC records
    vpn = [r for r in rows if r["safi"] == 128]
    assert [(r["afi"], r["prefix"], r["next_hop"]) for r in vpn] == [
        (1, "65010:15:192.168.0.0/16", "192.168.0.15"),
        (1, "65010:15:192.168.7.0/24", "192.168.0.15"),
    ]


@pytest.mark.parametrize(
    ("name", "families"),
    [
        ("mrtparse__openbgpd_bgp", {(1, 1): 33, (2, 1): 60, (1, 128): 6}),
        ("mrtparse__quagga_bgp", {(1, 1): 6, (2, 1): 12, (1, 128): 16}),
    ],
)
def test_mp_reach_vpnv4_announcements(
    shared_mrt: Path, name: str, families: dict[tuple[int, int], int]
) -> None:
    rows, _ = _decode(shared_mrt, name)
    ann = [r for r in rows if r["elem_type"] == "ANNOUNCE"]
    assert dict(Counter((r["afi"], r["safi"]) for r in ann)) == families
    assert all(r["next_hop"] for r in ann if r["safi"] == 128)


def test_openbgpd_table_dump_aggregator_and_ipv4_peer(shared_mrt: Path) -> None:
    rows, _ = _decode(shared_mrt, "mrtparse__openbgpd_rib_table")
    assert len(rows) == 31
    # 8-byte AGGREGATOR inside TABLE_DUMP: bgpdump shows "0 253.232.192.168".
    assert (rows[0]["aggregator_asn"], rows[0]["aggregator_ip"]) == (65000, "192.168.0.15")
    v6 = [r for r in rows if r["afi"] == 2]
    assert len(v6) == 20
    # IPv4 peer written as 16 bytes (address + zeros): bgpdump/bgpkit show c0a8:10a::.
    assert "c0a8:10a::" not in {r["peer_ip"] for r in rows}
    assert Counter(r["peer_ip"] for r in v6)["192.168.1.10"] == 10


def test_missing_peer_index_table(shared_mrt: Path) -> None:
    rows, stats = _decode(shared_mrt, "pyasn__bview.20140112.1600_3samples.bz2")
    assert rows == []
    assert stats.skipped_by_reason == {"missing_peer_index_table": 3}
    assert stats.records_read == 3
    assert mrt_kind(stats) == "RIB"
