"""Deterministic synthetic MRT files for benchmarks and tests (seeded ``random.Random``).

``write_synthetic_rib`` writes a TABLE_DUMP_V2 RIB (PEER_INDEX_TABLE, then
RIB_IPV4_UNICAST and RIB_IPV6_UNICAST records in prefix order); ``write_synthetic_updates``
writes a busy 15-minute BGP4MP_ET updates file (MESSAGE_AS4 UPDATEs with IPv4 and IPv6
(MP_REACH/MP_UNREACH) announcements and withdrawals, STATE_CHANGE_AS4 session flaps).
Both stream through bz2/gzip, so memory holds only the prefix list and the attribute pool,
never the output. The same arguments always produce byte-identical files.

RIB statistics imitate the RouteViews route-views.jinx RIB of 2014-05-30 22:00
(libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2), measured with
``bgpdump -m`` and a walk over the raw attribute blocks:

- 503,590 routes on 497,407 prefixes (497,323 IPv4 + 84 IPv6), 14 peers; one full-feed
  peer holds 497,321 routes, the other 13 from 2,262 down to 1. Entries per prefix:
  1: 494,463, 2: 905, 3: 921, 4: 1,036, 5: 82.
- 79,874 distinct attribute blocks (15.86 % of routes).
- AS path length (ASNs, a set counting its members): mean 4.16; 1: 0.14 %, 2: 4.76 %,
  3: 29.90 %, 4: 38.78 %, 5: 14.65 %, 6: 5.20 %, 7: 2.76 %, 8: 1.47 %, 9: 0.82 %,
  10: 0.49 %, 11-20: 1.00 %, > 20: 0.04 % (max 39). 13.03 % of paths prepend.
  4.53 % of paths contain a 4-byte ASN.
- AS_SET: 128 routes (0.025 %), set sizes 1 (110), 2 (10), 3-7 (8).
- ORIGIN: IGP 95.75 %, INCOMPLETE 4.15 %, EGP 0.10 %.
- COMMUNITIES on 0.87 % of routes (4,375), 1-10 per route (mean 3.8 where present);
  no large communities.
- MULTI_EXIT_DISC present on 13 routes (0.0026 %); LOCAL_PREF never (eBGP collector).
- ATOMIC_AGGREGATE 6.39 %, AGGREGATOR 8.83 %; NEXT_HOP equals the peer address 98.97 %.
- IPv4 prefix lengths: /24 54.0 %, /22 10.8 %, /23 9.4 %, /21 7.5 %, /20 7.0 %,
  /19 5.0 %, /16 2.6 %, /18 2.4 %, /17 1.4 %, /8-/15 0.7 %, > /24 0.2 %.
  IPv6: mostly /32 and /48.

``n_v4``/``n_v6`` count prefixes (RIB records); the number of routes (bgpdump lines) is
about 1.2 % higher, from the entries-per-prefix distribution above, and is returned in
``SynthStats.routes``. Peer 0 is the full-feed peer; the other peers' shares decay
geometrically as in jinx.

The updates file imitates RouteViews route-views2 of 2026-02-22 15:30
(mrtparser__updates.20260222.1530.bz2): 2.4 prefixes per UPDATE, 6.4 % withdrawals,
communities on 76 % of announcements (3.8 each), large communities 10 %, MED 22 %,
ATOMIC_AGGREGATE 2.7 %, AGGREGATOR 5.9 %, OTC 1.6 %, mean path length 5.4; plus 15 %
IPv6 (MP_REACH/MP_UNREACH) and a few session flaps.

CLI: ``python -m rvcloud.mrt.synth rib|updates OUT [--scale 0.01] [--seed 1] [--compress bz2]``.
"""

from __future__ import annotations

import argparse
import bisect
import bz2
import gzip
import io
import ipaddress
import itertools
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from rvcloud.mrt.writer import (
    Aggregator,
    AsPathSegment,
    ByteSink,
    MrtWriter,
    Nlri,
    Origin,
    PathAttributes,
    Peer,
    RibEntry,
    SegmentType,
    Session,
    Update,
    bgp4mp_state_change,
    bgp4mp_update,
    encode_rib_entry_attributes,
    peer_index_table,
    rib_entry_record,
)

Compression = Literal["bz2", "gzip", "none"]

DUMP_TIME: Final = 1_700_000_000
UPDATES_START: Final = 1_700_000_100
UPDATES_SPAN_US: Final = 900 * 1_000_000

# --- measured distributions (see module docstring) ------------------------------------

PATH_LENGTHS: Final = {
    1: 713, 2: 23954, 3: 150595, 4: 195276, 5: 73787, 6: 26203, 7: 13878, 8: 7380, 9: 4119,
    10: 2446, 11: 1139, 12: 886, 13: 1815, 14: 626, 15: 209, 16: 125, 17: 82, 18: 45, 19: 50,
    20: 47, 22: 29, 25: 11, 32: 150, 34: 10, 39: 1,
}  # fmt: skip
ENTRIES_PER_PREFIX: Final = {1: 494463, 2: 905, 3: 921, 4: 1036, 5: 82}
PEER_SHARES: Final = (497321, 2262, 1783, 1375, 664, 70, 61, 21, 15, 5, 5, 4, 3, 1)
AS_SET_SIZES: Final = {1: 110, 2: 10, 3: 4, 4: 2, 5: 1, 7: 1}
COMMUNITY_COUNTS: Final = {1: 274, 2: 844, 3: 1201, 4: 410, 5: 882, 6: 482, 7: 91, 8: 185, 9: 2, 10: 4}
V4_PREFIX_LENGTHS: Final = {
    8: 16, 9: 12, 10: 30, 11: 91, 12: 259, 13: 507, 14: 1000, 15: 1720, 16: 13097, 17: 7052,
    18: 11864, 19: 24857, 20: 34770, 21: 37450, 22: 53810, 23: 46913, 24: 268810, 25: 138,
    26: 109, 27: 52, 28: 97, 29: 109, 30: 395, 31: 28, 32: 230,
}  # fmt: skip
V6_PREFIX_LENGTHS: Final = {
    19: 2, 24: 3, 28: 4, 29: 20, 32: 300, 33: 10, 36: 20, 40: 40, 44: 60, 46: 30, 47: 20, 48: 600,
}  # fmt: skip
ROUTES: Final = 503_590
DISTINCT_SHARE: Final = 79_874 / ROUTES
ORIGINS: Final = {int(Origin.IGP): 482186, int(Origin.INCOMPLETE): 20903, int(Origin.EGP): 501}
P_PREPEND: Final = 65_615 / ROUTES
P_AS4: Final = 22_799 / ROUTES
P_AS_SET: Final = 128 / ROUTES
P_COMMUNITIES: Final = 4_375 / ROUTES
P_MED: Final = 13 / ROUTES
P_ATOMIC: Final = 32_204 / ROUTES
P_AGGREGATOR: Final = 44_481 / ROUTES
P_NH_IS_PEER: Final = 498_399 / ROUTES


class _Choice:
    """Weighted choice from a histogram via one random() and a bisect."""

    def __init__(self, weights: dict[int, int]) -> None:
        self.values = list(weights)
        self.cum = list(itertools.accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> int:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


@dataclass(frozen=True, slots=True)
class SynthStats:
    """What a generator wrote; ``routes`` + ``withdrawals`` + ``state_changes`` = bgpdump -m lines.

    ``prefixes_v4``/``prefixes_v6``: RIB prefixes, or for updates the announced plus
    withdrawn prefixes of each family.
    """

    path: Path
    records: int
    routes: int
    withdrawals: int
    state_changes: int
    prefixes_v4: int
    prefixes_v6: int
    distinct_attribute_sets: int
    uncompressed_bytes: int
    compressed_bytes: int


@contextmanager
def _open_out(path: Path, compress: Compression) -> Iterator[tuple[ByteSink, io.BufferedWriter]]:
    """(stream to write MRT into, underlying file whose tell() is the compressed size)."""
    with path.open("wb") as raw:
        if compress == "bz2":
            with bz2.BZ2File(raw, "wb", compresslevel=9) as bzf:
                yield bzf, raw
        elif compress == "gzip":
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gzf:
                yield gzf, raw
        else:
            yield raw, raw


# --- building blocks ----------------------------------------------------------------


class _AsnPool:
    """Transit ASNs with a heavy-tailed popularity, and a large set of origin ASNs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.transit = [rng.randint(1, 64_000) for _ in range(400)]
        self.origins = [rng.randint(1, 64_000) for _ in range(40_000)]
        self.origins4 = [rng.randint(131_072, 400_000) for _ in range(5_000)]

    def transit_asn(self) -> int:
        return self.transit[min(int(self.rng.paretovariate(1.2)) - 1, len(self.transit) - 1)]

    def origin_asn(self, as4: bool) -> int:
        return self.rng.choice(self.origins4 if as4 else self.origins)


class _AttributeMaker:
    """Random path attributes following the measured RIB (or updates) statistics."""

    path_length = _Choice(PATH_LENGTHS)
    set_size = _Choice(AS_SET_SIZES)
    community_count = _Choice(COMMUNITY_COUNTS)
    origin = _Choice(ORIGINS)

    def __init__(self, rng: random.Random, *, updates: bool) -> None:
        self.rng = rng
        self.asns = _AsnPool(rng)
        self.updates = updates

    def make(self, peer_as: int, peer_ip: str, v6: bool) -> PathAttributes:
        rng = self.rng
        length = self.path_length(rng) + (1 if self.updates and rng.random() < 0.5 else 0)
        as4 = rng.random() < (0.25 if self.updates else P_AS4)
        set_members: tuple[int, ...] = ()
        if rng.random() < P_AS_SET and length > 1:
            size = min(self.set_size(rng), length - 1)
            set_members = tuple(sorted({self.asns.origin_asn(False) for _ in range(size)}))
            length -= len(set_members)
        repeats = min(rng.randint(1, 3), length - 1) if rng.random() < P_PREPEND and length > 1 else 0
        unique = length - repeats
        origin_as = self.asns.origin_asn(as4)
        middle = [self.asns.transit_asn() for _ in range(max(unique - 2, 0))]
        path = ([peer_as] if unique > 1 else []) + middle + [origin_as]
        if repeats:  # prepending, mostly by the origin
            i = len(path) - 1 if rng.random() < 0.7 else rng.randrange(len(path))
            path[i:i] = [path[i]] * repeats
        segments = [AsPathSegment(SegmentType.AS_SEQUENCE, tuple(path))]
        if set_members:
            segments.append(AsPathSegment(SegmentType.AS_SET, set_members))
        p_comm, p_med = (0.764, 0.215) if self.updates else (P_COMMUNITIES, P_MED)
        communities: tuple[tuple[int, int], ...] = ()
        if rng.random() < p_comm:
            n = self.community_count(rng)
            communities = tuple(
                sorted({(peer_as & 0xFFFF, rng.choice((100, 200, 666, 3000 + n))) for _ in range(n)})
            )
        large: tuple[tuple[int, int, int], ...] = ()
        if self.updates and rng.random() < 0.103:
            large = ((peer_as, rng.randint(1, 10), rng.randint(1, 1000)),)
        p_agg = 0.059 if self.updates else P_AGGREGATOR
        aggregator = None
        if rng.random() < p_agg:
            aggregator = Aggregator(origin_as, str(ipaddress.IPv4Address(rng.getrandbits(32))))
        next_hop = peer_ip if rng.random() < P_NH_IS_PEER else _shift_address(peer_ip, rng.randint(1, 200))
        return PathAttributes(
            origin=Origin(self.origin(rng)),
            as_path=tuple(segments),
            next_hop=None if v6 else _v4_next_hop(next_hop),
            mp_next_hop=_v6_next_hop(next_hop) if v6 else None,
            med=rng.choice((0, 10, 100, 1000)) if rng.random() < p_med else None,
            atomic_aggregate=rng.random() < (0.027 if self.updates else P_ATOMIC),
            aggregator=aggregator,
            communities=communities,
            large_communities=large,
            only_to_customer=peer_as if self.updates and rng.random() < 0.016 else None,
        )


def _shift_address(addr: str, delta: int) -> str:
    ip = ipaddress.ip_address(addr)
    return str(ip + delta if int(ip) + delta < (1 << ip.max_prefixlen) else ip - delta)


def _v4_next_hop(addr: str) -> str:
    ip = ipaddress.ip_address(addr)
    return addr if ip.version == 4 else str(ipaddress.IPv4Address(0xC0000200 | (int(ip) & 0xFF)))


def _v6_next_hop(addr: str) -> str:
    ip = ipaddress.ip_address(addr)
    return addr if ip.version == 6 else f"2001:db8::{int(ip) >> 16 & 0xFFFF:x}:{int(ip) & 0xFFFF:x}"


def _prefixes(rng: random.Random, n: int, v6: bool) -> list[tuple[int, int]]:
    """``n`` distinct random (network, length) pairs in RIB order (address, then length)."""
    bits = 128 if v6 else 32
    length = _Choice(V6_PREFIX_LENGTHS if v6 else V4_PREFIX_LENGTHS)
    keys: set[int] = set()
    while len(keys) < n:
        plen = length(rng)
        if v6:
            addr = (1 << 125) | rng.getrandbits(125)  # 2000::/3
        else:
            first = rng.randint(1, 223)
            while first in (10, 127):
                first = rng.randint(1, 223)
            addr = first << 24 | rng.getrandbits(24)
        addr = addr >> (bits - plen) << (bits - plen)
        keys.add(addr << 8 | plen)
    return [(k >> 8, k & 0xFF) for k in sorted(keys)]


def _prefix_text(network: int, plen: int, v6: bool) -> str:
    ip = ipaddress.IPv6Address(network) if v6 else ipaddress.IPv4Address(network)
    return f"{ip}/{plen}"


def _peers(rng: random.Random, count: int) -> list[Peer]:
    out = []
    for i in range(count):
        asn = rng.choice((rng.randint(1, 64_000), rng.randint(131_072, 400_000)))
        ip = f"2001:db8:{i:x}::1" if i % 4 == 3 else f"198.51.{100 + i // 250}.{i % 250 + 1}"
        out.append(Peer(f"10.{i // 250}.{i % 250}.1", ip, asn))
    return out


def _peer_weights(count: int) -> list[float]:
    shares = [float(s) for s in PEER_SHARES[:count]]
    while len(shares) < count:
        shares.append(shares[-1] * 0.75)
    return shares


class _AttributePool:
    """Reuses attribute blocks so that about ``DISTINCT_SHARE`` of routes carry a new one.

    Reuse is preferential (a block is picked in proportion to its uses), which gives
    the heavy-tailed block popularity of a real RIB.
    """

    def __init__(self, rng: random.Random, maker: _AttributeMaker, total_routes: int) -> None:
        self.rng = rng
        self.maker = maker
        self.remaining_routes = total_routes
        self.remaining_new = max(1, round(total_routes * DISTINCT_SHARE))
        self.uses: dict[tuple[int, bool], list[bytes]] = {}
        self.distinct = 0

    def block(self, peer_index: int, peer: Peer, v6: bool) -> bytes:
        key = (peer_index, v6)
        uses = self.uses.setdefault(key, [])
        new = not uses or self.rng.random() * self.remaining_routes < self.remaining_new
        self.remaining_routes = max(self.remaining_routes - 1, 1)
        if new:
            attrs = self.maker.make(peer.asn, peer.ip, v6)
            blob = encode_rib_entry_attributes(attrs, v6=v6)
            self.remaining_new = max(self.remaining_new - 1, 0)
            self.distinct += 1
        else:
            blob = self.rng.choice(uses)
        uses.append(blob)
        return blob


def write_synthetic_rib(
    path: str | Path,
    *,
    n_v4: int = 1_000_000,
    n_v6: int = 200_000,
    peers: int = 40,
    seed: int = 1,
    compress: Compression = "bz2",
) -> SynthStats:
    """A full-table TABLE_DUMP_V2 RIB whose attribute statistics imitate the jinx RIB."""
    path = Path(path)
    rng = random.Random(seed)
    peer_list = _peers(rng, peers)
    weights = _peer_weights(peers)
    cum_weights = list(itertools.accumulate(weights[1:]))
    entries_per_prefix = _Choice(ENTRIES_PER_PREFIX)
    v4 = _prefixes(rng, n_v4, False)
    v6 = _prefixes(rng, n_v6, True)
    expected_routes = round((n_v4 + n_v6) * sum(k * v for k, v in ENTRIES_PER_PREFIX.items()) / 497_407)
    pool = _AttributePool(rng, _AttributeMaker(rng, updates=False), expected_routes)
    routes = 0
    with _open_out(path, compress) as (out, _raw):
        w = MrtWriter(out)
        w.write(peer_index_table("10.255.255.1", "synthetic", peer_list), DUMP_TIME)
        seq = 0
        for is_v6, prefixes in ((False, v4), (True, v6)):
            for network, plen in prefixes:
                k = min(entries_per_prefix(rng), peers)
                chosen = [0]
                if peers > 1:
                    while len(chosen) < k:
                        i = 1 + bisect.bisect_right(cum_weights, rng.random() * cum_weights[-1])
                        if i not in chosen:
                            chosen.append(i)
                entries = [
                    RibEntry(i, DUMP_TIME - rng.randint(60, 90 * 86_400), pool.block(i, peer_list[i], is_v6))
                    for i in sorted(chosen)
                ]
                w.write(rib_entry_record(seq, _prefix_text(network, plen, is_v6), entries), DUMP_TIME)
                seq += 1
                routes += len(entries)
    return SynthStats(
        path=path,
        records=w.records,
        routes=routes,
        withdrawals=0,
        state_changes=0,
        prefixes_v4=n_v4,
        prefixes_v6=n_v6,
        distinct_attribute_sets=pool.distinct,
        uncompressed_bytes=w.bytes_written,
        compressed_bytes=path.stat().st_size,
    )


class _Pacing:
    """Estimates the compressed size while bz2/gzip still buffer, and maps it to time."""

    def __init__(self, target: int, raw: io.BufferedWriter | None) -> None:
        self.target = target
        self.raw = raw
        self.last_compressed = 0
        self.uncompressed_at_last = 0
        self.ratio = 0.2
        self.t_us = 0

    def estimate(self, uncompressed: int) -> int:
        if self.raw is None:
            return uncompressed
        compressed = self.raw.tell()
        if compressed > self.last_compressed:
            self.last_compressed, self.uncompressed_at_last = compressed, uncompressed
            self.ratio = compressed / uncompressed
        return compressed + round((uncompressed - self.uncompressed_at_last) * self.ratio)

    def stamp(self, estimate: int) -> tuple[int, int]:
        self.t_us = max(self.t_us, min(estimate * UPDATES_SPAN_US // self.target, UPDATES_SPAN_US - 1))
        return UPDATES_START + self.t_us // 1_000_000, self.t_us % 1_000_000


_FLAP: Final = ((6, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6))


def write_synthetic_updates(
    path: str | Path,
    *,
    target_compressed_bytes: int = 10_000_000,
    peers: int = 30,
    seed: int = 1,
    compress: Compression = "bz2",
) -> SynthStats:
    """A busy 15-minute BGP4MP_ET MESSAGE_AS4 updates file of about the target compressed size.

    Timestamps advance with microseconds across 900 s in proportion to the estimated
    compressed size written so far; writing stops when that estimate reaches the target
    (so the file ends within one compression block of it, at about 900 s).
    """
    path = Path(path)
    rng = random.Random(seed)
    peer_list = _peers(rng, peers)
    sessions = [
        Session(p.ip, p.asn, "2001:db8:ffff::1" if ":" in p.ip else "198.51.99.1", 6447) for p in peer_list
    ]
    maker = _AttributeMaker(rng, updates=True)
    pool_v4 = [_prefix_text(n, plen, False) for n, plen in _prefixes(rng, 50_000, False)]
    pool_v6 = [_prefix_text(n, plen, True) for n, plen in _prefixes(rng, 10_000, True)]
    stats = {"routes": 0, "withdrawals": 0, "state_changes": 0, "v4": 0, "v6": 0}
    with _open_out(path, compress) as (out, raw):
        w = MrtWriter(out)
        pacing = _Pacing(target_compressed_bytes, raw if compress != "none" else None)

        def pick(pool: Sequence[str], n: int) -> tuple[Nlri, ...]:
            # busy prefixes churn more: a Pareto-distributed index into the pool
            idx = {min(int(rng.paretovariate(0.6)) - 1, len(pool) - 1) for _ in range(n)}
            idx |= {rng.randrange(len(pool))}
            return tuple(Nlri(pool[i]) for i in sorted(idx))

        while (estimate := pacing.estimate(w.bytes_written)) < target_compressed_bytes:
            ts, us = pacing.stamp(estimate)
            s_i = rng.randrange(peers)
            session, peer = sessions[s_i], peer_list[s_i]
            if rng.random() < 0.0005:
                for old, new in _FLAP:
                    w.write(bgp4mp_state_change(session, old, new), ts, us)
                stats["state_changes"] += len(_FLAP)
                continue
            v6 = ":" in session.peer_ip and rng.random() < 0.6  # IPv6 sessions carry some IPv4 too
            pool = pool_v6 if v6 else pool_v4
            n = max(1, min(int(rng.expovariate(1 / 2.4)) + 1, 40))
            if rng.random() < 0.064:
                update = Update(withdraw=pick(pool, n))
                stats["withdrawals"] += len(update.withdraw)
            else:
                attrs = maker.make(peer.asn, peer.ip, v6)
                update = Update(announce=pick(pool, n), attributes=attrs)
                stats["routes"] += len(update.announce)
            stats["v6" if v6 else "v4"] += len(update.announce) + len(update.withdraw)
            w.write(bgp4mp_update(session, update), ts, us)
    return SynthStats(
        path=path,
        records=w.records,
        routes=stats["routes"],
        withdrawals=stats["withdrawals"],
        state_changes=stats["state_changes"],
        prefixes_v4=stats["v4"],
        prefixes_v6=stats["v6"],
        distinct_attribute_sets=0,
        uncompressed_bytes=w.bytes_written,
        compressed_bytes=path.stat().st_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rvcloud.mrt.synth", description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("rib", "updates"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full-size defaults")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peers", type=int, default=None)
    ap.add_argument("--compress", choices=("bz2", "gzip", "none"), default="bz2")
    args = ap.parse_args(argv)
    if args.kind == "rib":
        stats = write_synthetic_rib(
            args.out,
            n_v4=max(1, round(1_000_000 * args.scale)),
            n_v6=max(1, round(200_000 * args.scale)),
            peers=args.peers or 40,
            seed=args.seed,
            compress=args.compress,
        )
    else:
        stats = write_synthetic_updates(
            args.out,
            target_compressed_bytes=max(1, round(10_000_000 * args.scale)),
            peers=args.peers or 30,
            seed=args.seed,
            compress=args.compress,
        )
    print(stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
