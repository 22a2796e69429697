"""Property tests: random valid MRT from the writer, decoded by rvcloud.mrt.decode_rows.

Every row field must equal what was written, rows must have exactly the schema columns,
and the DecodeStats counters must add up.
"""

from __future__ import annotations

import io
import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvcloud.mrt import DecodeStats, decode_rows
from rvcloud.mrt.schema import BGP_STATES, COLUMN_NAMES
from rvcloud.mrt.writer import (
    Aggregator,
    AsPathSegment,
    MrtWriter,
    Nlri,
    Origin,
    PathAttributes,
    Peer,
    RibEntry,
    SegmentType,
    Session,
    UnknownAttribute,
    Update,
    bgp4mp_message,
    bgp4mp_state_change,
    bgp4mp_update,
    bgp_keepalive_message,
    bgp_open_message,
    peer_index_table,
    rib_entry_record,
    table_dump_record,
)

SETTINGS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = 1_600_000_000

u32 = st.integers(0, 2**32 - 1)
u16 = st.integers(0, 2**16 - 1)
ipv4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))


@st.composite
def prefixes(draw: st.DrawFn, v6: bool) -> str:
    bits = 128 if v6 else 32
    plen = draw(st.integers(0, bits))
    addr = draw(st.integers(0, 2**bits - 1)) >> (bits - plen) << (bits - plen) if plen else 0
    return str(ipaddress.IPv6Network((addr, plen)) if v6 else ipaddress.IPv4Network((addr, plen)))


@st.composite
def as_paths(draw: st.DrawFn) -> tuple[AsPathSegment, ...]:
    """Confederation segments (2-byte ASNs) first, then sequences and sets; never ends in a confed."""
    main = draw(
        st.lists(
            st.builds(
                AsPathSegment,
                st.sampled_from([SegmentType.AS_SEQUENCE, SegmentType.AS_SET]),
                st.lists(u32, min_size=1, max_size=8).map(tuple),
            ),
            max_size=3,
        )
    )
    if not main:
        return ()
    confed = draw(
        st.lists(
            st.builds(
                AsPathSegment,
                st.sampled_from([SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET]),
                st.lists(u16, min_size=1, max_size=4).map(tuple),
            ),
            max_size=2,
        )
    )
    return tuple(confed + main)


UNKNOWN_TYPES = st.sampled_from([21, 30, 99, 127, 200, 254])


@st.composite
def attributes(draw: st.DrawFn, v6: bool) -> PathAttributes:
    return PathAttributes(
        origin=draw(st.one_of(st.none(), st.sampled_from(list(Origin)))),
        as_path=draw(as_paths()),
        next_hop=draw(ipv4) if not v6 else draw(st.one_of(st.none(), ipv4)),
        mp_next_hop=draw(ipv6) if v6 else None,
        mp_next_hop_link_local=draw(st.one_of(st.none(), ipv6)) if v6 else None,
        med=draw(st.one_of(st.none(), u32)),
        local_pref=draw(st.one_of(st.none(), u32)),
        atomic_aggregate=draw(st.booleans()),
        aggregator=draw(st.one_of(st.none(), st.builds(Aggregator, u32, ipv4))),
        communities=tuple(draw(st.lists(st.tuples(u16, u16), max_size=5))),
        large_communities=tuple(draw(st.lists(st.tuples(u32, u32, u32), max_size=3))),
        extended_communities=tuple(draw(st.lists(st.binary(min_size=8, max_size=8), max_size=3))),
        ipv6_extended_communities=tuple(draw(st.lists(st.binary(min_size=20, max_size=20), max_size=1))),
        only_to_customer=draw(st.one_of(st.none(), u32)),
        originator_id=draw(st.one_of(st.none(), ipv4)),
        cluster_list=tuple(draw(st.lists(ipv4, max_size=3))),
        unknown=tuple(
            draw(
                st.lists(
                    st.builds(
                        UnknownAttribute,
                        UNKNOWN_TYPES,
                        st.sampled_from([0x80, 0xC0, 0xE0]),
                        st.binary(max_size=300),
                    ),
                    max_size=2,
                    unique_by=lambda u: u.type_code,
                )
            )
        ),
    )


# ---- expected rows ----------------------------------------------------------------------


def as_path_text(segments: tuple[AsPathSegment, ...]) -> str:
    out = []
    for s in segments:
        a = [str(x) for x in s.asns]
        out.append(
            {
                SegmentType.AS_SEQUENCE: " ".join(a),
                SegmentType.AS_SET: "{" + ",".join(a) + "}",
                SegmentType.AS_CONFED_SEQUENCE: "(" + " ".join(a) + ")",
                SegmentType.AS_CONFED_SET: "[" + ",".join(a) + "]",
            }[s.type]
        )
    return " ".join(out)


def attribute_fields(attrs: PathAttributes, v6: bool) -> dict[str, Any]:
    path = attrs.as_path
    origin_asns: list[int] = []
    if path:
        last = path[-1]
        origin_asns = list(last.asns) if last.type is SegmentType.AS_SET else [last.asns[-1]]
    return {
        "next_hop": attrs.mp_next_hop if v6 else attrs.next_hop,
        "next_hop_link_local": attrs.mp_next_hop_link_local if v6 else None,
        "as_path": as_path_text(path),
        "as_path_asns": [a for s in path for a in s.asns],
        "origin_asns": origin_asns,
        "origin": None if attrs.origin is None else attrs.origin.name,
        "local_pref": attrs.local_pref,
        "med": attrs.med,
        "communities": [f"{a}:{v}" for a, v in attrs.communities],
        "large_communities": [f"{g}:{a}:{b}" for g, a, b in attrs.large_communities],
        "extended_communities": [
            e.hex() for e in attrs.extended_communities + attrs.ipv6_extended_communities
        ],
        "atomic_aggregate": attrs.atomic_aggregate,
        "aggregator_asn": attrs.aggregator.asn if attrs.aggregator else None,
        "aggregator_ip": attrs.aggregator.ip if attrs.aggregator else None,
        "only_to_customer": attrs.only_to_customer,
        "originator_id": attrs.originator_id,
        "cluster_list": list(attrs.cluster_list),
        "unknown_attributes": [  # in wire order: the writer sorts attributes by type code
            f"{u.type_code}:{u.wire_flags}:{u.value.hex()}"
            for u in sorted(attrs.unknown, key=lambda u: u.type_code)
        ],
    }


NO_ATTRS: dict[str, Any] = {
    "next_hop": None,
    "next_hop_link_local": None,
    "as_path": None,
    "as_path_asns": [],
    "origin_asns": [],
    "origin": None,
    "local_pref": None,
    "med": None,
    "communities": [],
    "large_communities": [],
    "extended_communities": [],
    "atomic_aggregate": False,
    "aggregator_asn": None,
    "aggregator_ip": None,
    "only_to_customer": None,
    "originator_id": None,
    "cluster_list": [],
    "unknown_attributes": [],
}


@dataclass
class Expect:
    rows: list[dict[str, Any]]
    records: int = 0

    def add(
        self,
        record_index: int,
        offset: int,
        *,
        timestamp: int,
        elem_type: str,
        peer_ip: str,
        peer_asn: int,
        prefix: str | None = None,
        path_id: int | None = None,
        attrs: PathAttributes | None = None,
        originated_time: int | None = None,
        old_state: str | None = None,
        new_state: str | None = None,
    ) -> None:
        v6 = prefix is not None and ipaddress.ip_network(prefix).version == 6
        row: dict[str, Any] = {
            "timestamp": timestamp,
            "originated_time": originated_time,
            "project": "routeviews",
            "collector": "route-views.test",
            "source_file": "test/file.mrt",
            "elem_type": elem_type,
            "peer_ip": peer_ip,
            "peer_asn": peer_asn,
            "prefix": prefix,
            "path_id": path_id,
            "afi": None if prefix is None else (2 if v6 else 1),
            "safi": None if prefix is None else 1,
            **(NO_ATTRS if attrs is None else attribute_fields(attrs, v6)),
            "old_state": old_state,
            "new_state": new_state,
            "record_index": record_index,
            "record_offset": offset,
        }
        self.rows.append(row)


def decode(data: bytes) -> tuple[list[dict[str, Any]], DecodeStats]:
    stats = DecodeStats()
    rows = list(
        decode_rows(
            io.BytesIO(data),
            project="routeviews",
            collector="route-views.test",
            source_file="test/file.mrt",
            stats=stats,
        )
    )
    return rows, stats


def check(data: bytes, expect: Expect, records: int, skipped: dict[str, int]) -> DecodeStats:
    rows, stats = decode(data)
    for row in rows:
        assert set(row) == set(COLUMN_NAMES)
    assert len(rows) == len(expect.rows)
    for got, want in zip(rows, expect.rows, strict=True):
        assert got == want
    assert stats.records_read == records
    assert stats.first_errors == []
    assert stats.truncated_at is None
    by_type = Counter(r["elem_type"] for r in rows)
    assert {k: v for k, v in stats.rows_by_type.items() if v} == dict(by_type)
    assert stats.skipped_by_reason == skipped
    assert stats.invariant_ok()
    assert sum(stats.mrt_types.values()) == records
    return stats


# ---- properties -------------------------------------------------------------------------


@st.composite
def rib_files(draw: st.DrawFn) -> tuple[bytes, Expect, int]:
    peers = draw(
        st.lists(
            st.builds(Peer, ipv4, st.one_of(ipv4, ipv6), u32, st.one_of(st.none(), st.just(True))),
            min_size=1,
            max_size=4,
        )
    )
    addpath = draw(st.booleans())
    buf = io.BytesIO()
    w = MrtWriter(buf)
    expect = Expect([])
    w.write(peer_index_table("10.0.0.1", draw(st.text(max_size=8)), peers), T0)
    for seq in range(draw(st.integers(1, 4))):
        v6 = draw(st.booleans())
        prefix = draw(prefixes(v6))
        entries = [
            RibEntry(
                draw(st.integers(0, len(peers) - 1)),
                draw(u32),
                draw(attributes(v6)),
                draw(u32) if addpath else None,
            )
            for _ in range(draw(st.integers(1, 3)))
        ]
        offset = w.write(rib_entry_record(seq, prefix, entries, addpath=addpath), T0 + seq)
        for e in entries:
            p = peers[e.peer_index]
            assert isinstance(e.attributes, PathAttributes)
            expect.add(
                w.records - 1,
                offset,
                timestamp=(T0 + seq) * 1_000_000,
                elem_type="RIB",
                peer_ip=p.ip,
                peer_asn=p.asn,
                prefix=prefix,
                path_id=e.path_id,
                attrs=e.attributes,
                originated_time=e.originated_time * 1_000_000,
            )
    return buf.getvalue(), expect, w.records


@SETTINGS
@given(rib_files())
def test_table_dump_v2_roundtrip(case: tuple[bytes, Expect, int]) -> None:
    data, expect, records = case
    check(data, expect, records, {"peer_index_table": 1})


@st.composite
def table_dump_v1_files(draw: st.DrawFn) -> tuple[bytes, Expect, int]:
    buf = io.BytesIO()
    w = MrtWriter(buf)
    expect = Expect([])
    for seq in range(draw(st.integers(1, 4))):
        v6 = draw(st.booleans())
        prefix = draw(prefixes(v6))
        peer_ip = draw(ipv6 if v6 else ipv4)
        peer_as = draw(u16)
        attrs = draw(attributes(v6))
        originated = draw(u32)
        rec = table_dump_record(
            view=0,
            seq=seq,
            prefix=prefix,
            originated_time=originated,
            peer_ip=peer_ip,
            peer_as=peer_as,
            attributes=attrs,
        )
        offset = w.write(rec, T0)
        expect.add(
            w.records - 1,
            offset,
            timestamp=T0 * 1_000_000,
            elem_type="RIB",
            peer_ip=peer_ip,
            peer_asn=peer_as,
            prefix=prefix,
            attrs=attrs,
            originated_time=originated * 1_000_000,
        )
    return buf.getvalue(), expect, w.records


@SETTINGS
@given(table_dump_v1_files())
def test_table_dump_v1_roundtrip(case: tuple[bytes, Expect, int]) -> None:
    data, expect, records = case
    check(data, expect, records, {})


@st.composite
def update_files(draw: st.DrawFn) -> tuple[bytes, Expect, int, dict[str, int]]:
    buf = io.BytesIO()
    w = MrtWriter(buf)
    expect = Expect([])
    skipped: Counter[str] = Counter()
    for i in range(draw(st.integers(1, 6))):
        as4 = draw(st.booleans())
        addpath = draw(st.booleans())
        v6_session = draw(st.booleans())
        session = Session(
            draw(ipv6 if v6_session else ipv4),
            draw(u32 if as4 else u16),
            draw(ipv6 if v6_session else ipv4),
            draw(u32 if as4 else u16),
            draw(u16),
        )
        et = draw(st.booleans())
        us = draw(st.integers(0, 999_999)) if et else None
        ts = T0 + i
        stamp = ts * 1_000_000 + (us or 0)
        kind = draw(st.sampled_from(["update", "update", "update", "state", "keepalive", "open"]))
        if kind == "state":
            old, new = draw(st.integers(1, 6)), draw(st.integers(1, 6))
            offset = w.write(bgp4mp_state_change(session, old, new, as4=as4), ts, us)
            expect.add(
                w.records - 1,
                offset,
                timestamp=stamp,
                elem_type="STATE",
                peer_ip=session.peer_ip,
                peer_asn=session.peer_as,
                old_state=BGP_STATES[old],
                new_state=BGP_STATES[new],
            )
            continue
        if kind in ("keepalive", "open"):
            msg = (
                bgp_keepalive_message()
                if kind == "keepalive"
                else bgp_open_message(session.peer_as, "1.2.3.4")
            )
            w.write(bgp4mp_message(session, msg, as4=as4), ts, us)
            skipped[kind] += 1
            continue

        def nlri(v6: bool, _addpath: bool = addpath) -> Nlri:
            return Nlri(draw(prefixes(v6)), draw(u32) if _addpath else None)

        withdraw = draw(st.lists(st.booleans(), max_size=3))
        announce = draw(st.lists(st.booleans(), min_size=0 if withdraw else 1, max_size=3))
        wd = tuple(nlri(v6) for v6 in withdraw)
        ann = tuple(nlri(v6) for v6 in announce)
        if not addpath:
            # Without ADD-PATH an UPDATE lists a prefix once. Repeated /0 prefixes are
            # exactly what path ids look like when read plainly (the decoder's ADD-PATH
            # detection, see mrt/nlri.py), so such input is ambiguous by nature.
            wd = tuple({n.prefix: n for n in wd}.values())
            ann = tuple({n.prefix: n for n in ann}.values())
        attrs = draw(attributes(True)) if ann else None
        if attrs is not None and any(not _is_v6(n.prefix) for n in ann) and attrs.next_hop is None:
            attrs = PathAttributes(next_hop="192.0.2.1", mp_next_hop=attrs.mp_next_hop)
        offset = w.write(bgp4mp_update(session, Update(ann, wd, attrs), as4=as4, addpath=addpath), ts, us)
        common = {"timestamp": stamp, "peer_ip": session.peer_ip, "peer_asn": session.peer_as}
        for n in sorted(wd, key=lambda n: _is_v6(n.prefix)):
            expect.add(
                w.records - 1, offset, elem_type="WITHDRAW", prefix=n.prefix, path_id=n.path_id, **common
            )
        for n in sorted(ann, key=lambda n: _is_v6(n.prefix)):
            expect.add(
                w.records - 1,
                offset,
                elem_type="ANNOUNCE",
                prefix=n.prefix,
                path_id=n.path_id,
                attrs=attrs,
                **common,
            )
    return buf.getvalue(), expect, w.records, dict(skipped)


def _is_v6(prefix: str) -> bool:
    return ipaddress.ip_network(prefix).version == 6


@SETTINGS
@given(update_files())
def test_bgp4mp_roundtrip(case: tuple[bytes, Expect, int, dict[str, int]]) -> None:
    data, expect, records, skipped = case
    check(data, expect, records, skipped)
