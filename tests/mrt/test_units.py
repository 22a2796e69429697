"""Unit tests of the attribute, AS path, community, prefix and compression helpers."""

from __future__ import annotations

import bz2
import gzip
import io
import struct

import pytest

from rvcloud.mrt import detect_encoding, open_decompressed
from rvcloud.mrt.aspath import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    merge_as4,
    origin_asns,
    parse_segments,
    path_text,
)
from rvcloud.mrt.attributes import AttrError, decode_attributes
from rvcloud.mrt.communities import extended, large, standard
from rvcloud.mrt.nlri import PrefixParser, prefix_text
from rvcloud.mrt.schema import empty_row


def _attr(typ: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return struct.pack(">BBH", flags | 0x10, typ, len(value)) + value
    return struct.pack(">BBB", flags, typ, len(value)) + value


def _seg(typ: int, asns: list[int], size: int) -> bytes:
    return bytes([typ, len(asns)]) + b"".join(a.to_bytes(size, "big") for a in asns)


def test_path_text_all_segment_types() -> None:
    segs = [
        (AS_CONFED_SEQUENCE, (65001, 65002)),
        (AS_CONFED_SET, (65003, 65004)),
        (AS_SEQUENCE, (1, 2)),
        (AS_SET, (3, 4)),
    ]
    assert path_text(segs) == "(65001 65002) [65003,65004] 1 2 {3,4}"
    assert origin_asns(segs) == [3, 4]
    assert origin_asns([(AS_SEQUENCE, (1, 2))]) == [2]
    assert origin_asns([]) == []


def test_parse_segments_sizes() -> None:
    data = _seg(AS_SEQUENCE, [1, 70000], 4)
    assert parse_segments(data, 4) == [(AS_SEQUENCE, (1, 70000))]
    with pytest.raises(ValueError):
        parse_segments(data[:-1], 4)


def test_merge_as4_rfc6793() -> None:
    as_path = [(AS_SEQUENCE, (10, 23456, 23456, 30))]
    as4 = [(AS_SEQUENCE, (200000, 300000, 30))]
    assert path_text(merge_as4(as_path, as4)) == "10 200000 300000 30"


def test_as4_merge_in_two_byte_session() -> None:
    raw = (
        _attr(1, b"\x00")
        + _attr(2, _seg(AS_SEQUENCE, [10, 23456, 30], 2))
        + _attr(17, _seg(AS_SEQUENCE, [200000, 30], 4), 0xC0)
        + _attr(7, struct.pack(">H4s", 23456, bytes([10, 0, 0, 1])))
        + _attr(18, struct.pack(">I4s", 200000, bytes([10, 0, 0, 1])), 0xC0)
    )
    base = decode_attributes(raw, 2, empty_row()).base
    assert base["as_path"] == "10 200000 30"
    assert base["as_path_asns"] == [10, 200000, 30]
    assert base["origin_asns"] == [30]
    assert (base["aggregator_asn"], base["aggregator_ip"]) == (200000, "10.0.0.1")


def test_as4_ignored_when_aggregator_is_not_as_trans() -> None:
    raw = (
        _attr(2, _seg(AS_SEQUENCE, [10, 23456, 30], 2))
        + _attr(17, _seg(AS_SEQUENCE, [200000, 30], 4), 0xC0)
        + _attr(7, struct.pack(">H4s", 64512, bytes([10, 0, 0, 1])))
        + _attr(18, struct.pack(">I4s", 200000, bytes([10, 0, 0, 1])), 0xC0)
    )
    base = decode_attributes(raw, 2, empty_row()).base
    assert base["as_path"] == "10 23456 30"
    assert base["aggregator_asn"] == 64512


def test_all_attribute_kinds() -> None:
    raw = (
        _attr(1, b"\x02")
        + _attr(2, _seg(AS_SEQUENCE, [1, 4200000000], 4))
        + _attr(3, bytes([192, 0, 2, 1]))
        + _attr(4, struct.pack(">I", 5), 0x80)
        + _attr(5, struct.pack(">I", 100))
        + _attr(6, b"")
        + _attr(8, struct.pack(">II", (65000 << 16) | 1, 0xFFFFFF01), 0xC0)
        + _attr(9, bytes([1, 2, 3, 4]), 0x80)
        + _attr(10, bytes([5, 6, 7, 8, 9, 9, 9, 9]), 0x80)
        + _attr(16, bytes.fromhex("0002fde800000064"), 0xC0)
        + _attr(32, struct.pack(">III", 4294967295, 1, 2), 0xC0)
        + _attr(35, struct.pack(">I", 64500), 0xC0)
        + _attr(99, b"\xab\xcd", 0xC0)
        + _attr(14, bytes([16]) + bytes(15) + b"\x01")  # TABLE_DUMP_V2 abbreviated MP_REACH
    )
    a = decode_attributes(raw, 4, empty_row())
    b = a.base
    assert b["origin"] == "INCOMPLETE"
    assert b["as_path"] == "1 4200000000"
    assert b["next_hop"] == "192.0.2.1"
    assert (b["med"], b["local_pref"], b["atomic_aggregate"]) == (5, 100, True)
    assert b["communities"] == ["65000:1", "65535:65281"]
    assert b["originator_id"] == "1.2.3.4"
    assert b["cluster_list"] == ["5.6.7.8", "9.9.9.9"]
    assert b["extended_communities"] == ["0002fde800000064"]
    assert b["large_communities"] == ["4294967295:1:2"]
    assert b["only_to_customer"] == 64500
    assert b["unknown_attributes"] == ["99:192:abcd"]
    assert a.base_mp["next_hop"] == "::1"


def test_empty_as_path_and_missing_med_are_distinct() -> None:
    base = decode_attributes(_attr(1, b"\x00") + _attr(2, b""), 4, empty_row()).base
    assert base["as_path"] == "" and base["med"] is None and base["local_pref"] is None


def test_malformed_attributes() -> None:
    with pytest.raises(AttrError):
        decode_attributes(_attr(1, b"\x07"), 4, empty_row())
    with pytest.raises(AttrError):
        decode_attributes(_attr(2, b"\x02\x05\x00\x01"), 4, empty_row())
    with pytest.raises(AttrError):
        decode_attributes(b"\x40\x01\x05\x00", 4, empty_row())
    # A damaged COMMUNITIES only loses itself (RFC 7606 attribute discard).
    a = decode_attributes(_attr(1, b"\x00") + _attr(8, b"\x00\x01\x02", 0xC0), 4, empty_row())
    assert a.base["communities"] == [] and a.base["unknown_attributes"] == ["8:192:000102"]
    assert a.notes


def test_mp_reach_full_ipv6_with_link_local() -> None:
    nh = bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("fe800000000000000000000000000002")
    nlri = bytes([32]) + bytes.fromhex("20010db8")
    v = struct.pack(">HBB", 2, 1, 32) + nh + b"\x00" + nlri
    a = decode_attributes(_attr(14, v, 0x80), 4, empty_row())
    assert a.mp_reach is not None
    assert (a.mp_reach.afi, a.mp_reach.safi, a.mp_reach.data) == (2, 1, nlri)
    assert (a.base_mp["next_hop"], a.base_mp["next_hop_link_local"]) == ("2001:db8::1", "fe80::2")


def test_communities() -> None:
    assert standard(struct.pack(">I", (1 << 16) | 2)) == ["1:2"]
    assert large(struct.pack(">III", 1, 2, 3)) == ["1:2:3"]
    assert extended(bytes(20), 20) == ["00" * 20]


def test_prefix_text_masks_host_bits() -> None:
    assert prefix_text(1, 13, bytes([11, 13])) == "11.8.0.0/13"
    assert prefix_text(1, 0, b"") == "0.0.0.0/0"
    assert prefix_text(2, 64, bytes.fromhex("20010db800010000")) == "2001:db8:1::/64"
    assert prefix_text(2, 33, bytes.fromhex("20010db8ff")) == "2001:db8:8000::/33"


def test_prefix_parser_addpath_guess() -> None:
    p = PrefixParser()
    data = b"\x00\x00\x00\x01\x18\x0a\x00\x01"  # path id 1 + 10.0.1.0/24
    plain, problem = p.parse(data, 0, len(data), 1, 1, False)
    assert problem is None and plain[0][0] == "0.0.0.0/0"  # the plain reading is nonsense
    guessed, problem, used = p.parse_guess_addpath(data, 0, len(data), 1, 1, False)
    assert used and problem is None and guessed == [("10.0.1.0/24", 1)]


def test_prefix_parser_vpn() -> None:
    p = PrefixParser()
    rd = struct.pack(">HHI", 0, 65010, 15)
    data = bytes([24 + 64 + 16]) + b"\x00\x01\x01" + rd + bytes([192, 168])
    assert p.parse(data, 0, len(data), 1, 128, False) == ([("65010:15:192.168.0.0/16", None)], None)


def test_prefix_parser_rejects_overlong() -> None:
    p = PrefixParser()
    assert p.parse(bytes([117, 1, 2, 3]), 0, 4, 1, 1, False)[1] is not None


@pytest.mark.parametrize(
    ("packed", "enc"),
    [(gzip.compress(b"MRTDATA"), "gzip"), (bz2.compress(b"MRTDATA"), "bzip2"), (b"MRTDATA", "none")],
)
def test_open_decompressed_non_seekable(packed: bytes, enc: str) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            chunk = self._b.read(min(len(b), 3))
            b[: len(chunk)] = chunk
            return len(chunk)

        def seekable(self) -> bool:
            return False

    assert detect_encoding(packed[:4]) == enc
    stream, got = open_decompressed(Pipe(packed))  # type: ignore[arg-type]
    assert got == enc
    assert stream.read() == b"MRTDATA"
