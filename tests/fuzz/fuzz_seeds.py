"""Seed corpora for the fuzz targets, made at run time (nothing large is committed).

Seeds come from the first records of every shared real MRT file and from files the
writer makes; each is cut into the input format of its target (see fuzz_targets).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from rvcloud.mrt import writer as w
from rvcloud.mrt.writer import AsPathSegment, Nlri, PathAttributes, SegmentType, Session, Update

HEAD: Final = 256 * 1024
MAX_SEED: Final = 64 * 1024
MAX_PER_FILE: Final = 40
RIB_SUBTYPES: Final = {2: 0, 4: 1, 8: 2, 10: 3}


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        magic = f.read(3)
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else bz2.open if magic == b"BZh" else open
    try:
        with opener(path, "rb") as g:
            data: bytes = g.read(HEAD)
            return data
    except (OSError, EOFError):
        return b""


def _records(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(type, subtype, body, whole record) for complete records at the start of ``data``."""
    off = 0
    while off + 12 <= len(data):
        _, t, st, ln = struct.unpack_from(">IHHI", data, off)
        if off + 12 + ln > len(data):
            return
        yield t, st, data[off + 12 : off + 12 + ln], data[off : off + 12 + ln]
        off += 12 + ln


def _update_payload(t: int, st: int, body: bytes) -> tuple[int, bytes] | None:
    """(selector, UPDATE payload) of a BGP4MP(_ET) MESSAGE* record carrying an UPDATE."""
    if t == 17:
        body = body[4:]
    if t not in (16, 17) or st not in (1, 4, 8, 9):
        return None
    as4 = st in (4, 9)
    head = 8 if as4 else 4
    if len(body) < head + 4:
        return None
    afi = struct.unpack_from(">H", body, head + 2)[0]
    start = head + 4 + (32 if afi == 2 else 8)
    msg = body[start:]
    if len(msg) < 19 or msg[18] != 2:
        return None
    selector = (1 if as4 else 0) | (2 if st in (8, 9) else 0) | (4 if t == 17 else 0) | (8 if afi == 2 else 0)
    return selector, msg[19:]


def _nlri_of(payload: bytes) -> list[tuple[int, bytes]]:
    """(mode, bytes) seeds for the nlri target from a real UPDATE payload."""
    if len(payload) < 4:
        return []
    wlen = struct.unpack_from(">H", payload, 0)[0]
    withdrawn = payload[2 : 2 + wlen]
    alen = struct.unpack_from(">H", payload, 2 + wlen)[0] if len(payload) >= 4 + wlen else 0
    tail = payload[4 + wlen + alen :]
    return [(m, b) for m, b in ((0, withdrawn), (1, tail)) if b]


def _writer_files() -> list[bytes]:
    s4 = Session("192.0.2.1", 65001, "192.0.2.254", 6447)
    s6 = Session("2001:db8::1", 4_200_000_000, "2001:db8::fe", 6447)
    attrs = PathAttributes(
        as_path=(
            AsPathSegment(SegmentType.AS_CONFED_SEQUENCE, (64512,)),
            AsPathSegment(SegmentType.AS_SEQUENCE, (65001, 4_200_000_000)),
            AsPathSegment(SegmentType.AS_SET, (1, 2)),
        ),
        next_hop="192.0.2.1",
        mp_next_hop="2001:db8::1",
        mp_next_hop_link_local="fe80::1",
        med=5,
        local_pref=100,
        atomic_aggregate=True,
        aggregator=w.Aggregator(4_200_000_001, "192.0.2.9"),
        communities=((65001, 1),),
        large_communities=((1, 2, 3),),
        extended_communities=(bytes(range(8)),),
        only_to_customer=65001,
        originator_id="10.0.0.9",
        cluster_list=("10.0.0.1",),
        unknown=(w.UnknownAttribute(99, 0xC0, b"x" * 300),),
    )
    out = []
    for addpath in (False, True):

        def n(p: str, _addpath: bool = addpath) -> Nlri:
            return Nlri(p, 7 if _addpath else None)

        buf = io.BytesIO()
        mw = w.MrtWriter(buf)
        mw.write(w.peer_index_table("10.9.9.9", "v", [w.Peer("10.0.0.1", "192.0.2.1", 65001)]), 1)
        for prefix in ("10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "192.0.2.1/32"):
            mw.write(
                w.rib_entry_record(
                    0, prefix, [w.RibEntry(0, 1, attrs, 7 if addpath else None)], addpath=addpath
                ),
                1,
            )
        upd = Update(
            (n("10.1.0.0/16"), n("2001:db8:1::/48")), (n("10.2.0.0/16"), n("2001:db8:2::/48")), attrs
        )
        for s in (s4, s6):
            for as4 in (False, True) if s is s4 else (True,):
                mw.write(w.bgp4mp_update(s, upd, as4=as4, addpath=addpath), 2, 5)
                mw.write(w.bgp4mp_update(s, upd, as4=as4, addpath=addpath), 2)
            mw.write(w.bgp4mp_state_change(s, 1, 6, as4=s is s6), 3)
            mw.write(w.bgp4mp_message(s, w.bgp_keepalive_message()), 3)
        mw.write(
            w.table_dump_record(
                view=0,
                seq=1,
                prefix="10.3.0.0/16",
                originated_time=1,
                peer_ip="192.0.2.1",
                peer_as=65001,
                attributes=attrs,
            ),
            4,
        )
        out.append(buf.getvalue())
    return out


def _avro_block_seeds(stream: bytes) -> list[bytes]:
    """Seeds of the avro_columns target: the stream converted to Avro, then the first 1, 2
    and 7 rows of each table's first block as ``[count] + data``."""
    from fuzz_targets import avro_reference_rows

    from rvcloud.backends.warehouse.avro_chunks import ContainerReader
    from rvcloud.converter_worker.convert import convert_stream

    outs: dict[str, io.BytesIO] = {}

    def open_output(table: str) -> io.BytesIO:
        outs[table] = io.BytesIO()
        return outs[table]

    try:
        # A few rows are enough: the first 32 KiB of the stream.
        head = io.BytesIO(stream[: 32 * 1024])
        convert_stream(head, open_output, project="p", collector="c", source_file="f", workers=1)
    except Exception:  # not MRT at all: no seeds from it
        return []
    found = []
    for buf in outs.values():
        for count, _, data in ContainerReader(io.BytesIO(buf.getvalue())).blocks():
            block = zlib.decompress(data, -15)
            _, ends = avro_reference_rows(block, count)
            found += [bytes([k]) + block[: ends[k - 1]] for k in (1, 2, 7) if k <= count]
            break
    return [s for s in found if len(s) <= MAX_SEED]


def seeds(target: str, shared_dir: Path | None) -> list[bytes]:
    """Seed inputs for one target."""
    streams = _writer_files()
    if shared_dir is not None and shared_dir.is_dir():
        streams += [_head(p) for p in sorted(shared_dir.iterdir()) if p.name != "MANIFEST.md"]
    out: list[bytes] = []
    for data in streams:
        if target == "avro_columns":
            out += _avro_block_seeds(data)
            continue
        if target == "framing":
            recs = [r[3] for r in _records(data)][:MAX_PER_FILE]
            out.append(b"".join(recs)[:MAX_SEED])
            continue
        n = 0
        for t, st, body, _ in _records(data):
            if n >= MAX_PER_FILE:
                break
            if target in ("rib", "rib_accel") and t == 13 and st in RIB_SUBTYPES:
                out.append(bytes([RIB_SUBTYPES[st]]) + body[:MAX_SEED])
                n += 1
            elif target in ("update", "nlri"):
                upd = _update_payload(t, st, body)
                if upd is None:
                    continue
                selector, payload = upd
                if target == "update":
                    out.append(bytes([selector]) + payload[:MAX_SEED])
                else:
                    addpath = 8 if selector & 2 else 0
                    out.extend(bytes([mode | addpath]) + b[:1023] for mode, b in _nlri_of(payload))
                n += 1
    return [s for s in out if s]


def write_seeds(target: str, shared_dir: Path | None, out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    items = seeds(target, shared_dir)
    for s in items:
        (out_dir / hashlib.sha1(s).hexdigest()).write_bytes(s)
    return len(items)
