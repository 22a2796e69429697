"""Prefix (NLRI) decoding: IPv4/IPv6 prefixes, ADD-PATH identifiers, labels and RDs.

Prefix text is canonical: host bits beyond the prefix length are masked (as
bgpdump master does) and IPv6 uses the ``ipaddress`` compressed form. VPN
prefixes (SAFI 128/129) are rendered ``"<RD>:<prefix>"`` with the route
distinguisher as ``asn:number`` (types 0 and 2) or ``a.b.c.d:number`` (type 1);
MPLS labels are dropped.

Text is cached per decode by the raw prefix bytes because the same prefixes recur
constantly in update streams.
"""

from __future__ import annotations

import ipaddress
import struct
from socket import inet_ntoa
from typing import Final

AFI_IPV4: Final = 1
AFI_IPV6: Final = 2

SAFI_UNICAST: Final = 1
SAFI_MULTICAST: Final = 2
SAFI_BOTH: Final = 3
SAFI_LABELED: Final = 4
SAFI_VPN: Final = 128
SAFI_VPN_MULTICAST: Final = 129

# SAFIs whose NLRI is a plain prefix / a labelled prefix / label + RD + prefix.
PLAIN_SAFIS: Final = frozenset({SAFI_UNICAST, SAFI_MULTICAST, SAFI_BOTH})
LABELED_SAFIS: Final = frozenset({SAFI_LABELED})
VPN_SAFIS: Final = frozenset({SAFI_VPN, SAFI_VPN_MULTICAST})
SUPPORTED_SAFIS: Final = PLAIN_SAFIS | LABELED_SAFIS | VPN_SAFIS

_MAX_BITS: Final = {AFI_IPV4: 32, AFI_IPV6: 128}
_ADDR_BYTES: Final = {AFI_IPV4: 4, AFI_IPV6: 16}
_CACHE_LIMIT: Final = 100_000
_ZERO4: Final = bytes(4)

_U32 = struct.Struct(">I")


class NLRIError(ValueError):
    """The prefix field cannot be decoded as the expected encoding."""


def ipv4_text(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"


def ipv6_text(b: bytes) -> str:
    return ipaddress.IPv6Address(b).compressed


def ip_text(b: bytes) -> str:
    """Address text for a 4- or 16-byte address."""
    if len(b) == 4:
        return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"
    return ipaddress.IPv6Address(b).compressed


def prefix_text(afi: int, plen: int, raw: bytes) -> str:
    """Canonical ``addr/len`` for ``raw`` (the ceil(plen/8) significant bytes, host bits masked)."""
    if afi == AFI_IPV4:
        nb = (plen + 7) >> 3
        raw = raw[:nb]
        if plen & 7:
            raw = raw[:-1] + bytes((raw[-1] & (0xFF << (8 - (plen & 7))) & 0xFF,))
        return inet_ntoa(raw + _ZERO4[nb:]) + "/" + str(plen)
    v6 = int.from_bytes(raw.ljust(16, b"\0"), "big")
    if plen < 128:
        v6 &= ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
    return f"{ipaddress.IPv6Address(v6).compressed}/{plen}"


def rd_text(rd: bytes) -> str:
    """Route distinguisher (RFC 4364) as text."""
    typ = (rd[0] << 8) | rd[1]
    if typ == 0:
        return f"{(rd[2] << 8) | rd[3]}:{_U32.unpack_from(rd, 4)[0]}"
    if typ == 1:
        return f"{rd[2]}.{rd[3]}.{rd[4]}.{rd[5]}:{(rd[6] << 8) | rd[7]}"
    if typ == 2:
        return f"{_U32.unpack_from(rd, 2)[0]}:{(rd[6] << 8) | rd[7]}"
    return rd.hex()


class PrefixParser:
    """Decodes prefix lists; holds the per-decode text cache."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[int, bytes], str] = {}

    def text(self, afi: int, plen: int, raw: bytes) -> str:
        key = (afi, bytes((plen,)) + raw)
        s = self._cache.get(key)
        if s is None:
            s = prefix_text(afi, plen, raw)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = s
        return s

    def parse(
        self, buf: bytes, start: int, end: int, afi: int, safi: int, addpath: bool
    ) -> tuple[list[tuple[str, int | None]], str | None]:
        """Decode the prefix list ``buf[start:end]``.

        Returns ``(prefixes, problem)``: every prefix decoded before the first
        problem, and a description of the problem (``None`` if the field was
        consumed exactly). Each prefix is ``(text, path_id)``.
        """
        maxbits = _MAX_BITS.get(afi)
        if maxbits is None:
            return [], f"unsupported AFI {afi}"
        out: list[tuple[str, int | None]] = []
        p = start
        vpn = safi in VPN_SAFIS
        labeled = vpn or safi in LABELED_SAFIS
        while p < end:
            path_id: int | None = None
            if addpath:
                if p + 5 > end:
                    return out, f"{end - p} dangling byte(s) at NLRI end"
                path_id = _U32.unpack_from(buf, p)[0]
                p += 4
            plen = buf[p]
            p += 1
            if labeled:
                rd = b""
                bits = plen
                # Labels run until the bottom-of-stack bit (or the RFC 3107 withdraw label 0x800000).
                while True:
                    if bits < 24 or p + 3 > end:
                        return out, f"bad labelled NLRI (len {plen})"
                    lab = buf[p : p + 3]
                    p += 3
                    bits -= 24
                    if lab[2] & 1 or lab == b"\x80\x00\x00" or lab == b"\x00\x00\x00":
                        break
                if vpn:
                    if bits < 64 or p + 8 > end:
                        return out, f"bad VPN NLRI (len {plen})"
                    rd = buf[p : p + 8]
                    p += 8
                    bits -= 64
                if bits > maxbits:
                    return out, f"prefix length {bits} > {maxbits}"
                nb = (bits + 7) >> 3
                if p + nb > end:
                    return out, f"prefix /{bits} overruns NLRI by {p + nb - end} byte(s)"
                txt = self.text(afi, bits, buf[p : p + nb])
                p += nb
                out.append((f"{rd_text(rd)}:{txt}" if vpn else txt, path_id))
                continue
            if plen > maxbits:
                return out, f"prefix length {plen} > {maxbits}"
            nb = (plen + 7) >> 3
            if p + nb > end:
                return out, f"prefix /{plen} overruns NLRI by {p + nb - end} byte(s)"
            out.append((self.text(afi, plen, buf[p : p + nb]), path_id))
            p += nb
        return out, None

    def parse_guess_addpath(
        self, buf: bytes, start: int, end: int, afi: int, safi: int, addpath: bool
    ) -> tuple[list[tuple[str, int | None]], str | None, bool]:
        """Like :meth:`parse`, but detects ADD-PATH NLRI sent under a non-ADD-PATH subtype.

        Some speakers (BIRD) wrote path identifiers without using the *_ADDPATH MRT
        subtypes. Read plainly, such a field usually fails to parse, or parses into
        nonsense such as a run of ``/0`` prefixes (the high bytes of the path id).
        The ADD-PATH reading is kept when it consumes the field exactly and the
        plain reading either fails or contains two or more zero-length prefixes. The third
        element of the result says whether the ADD-PATH reading was chosen.
        """
        plain, problem = self.parse(buf, start, end, afi, safi, addpath)
        if addpath or start >= end:
            return plain, problem, False
        # A path id read as prefixes starts with zero-length prefixes (its high zero
        # bytes): small ids give two or more /0 in a row. One /0 alone is a real default
        # route and must not flip the reading.
        suspicious = problem is not None or sum(1 for t, _ in plain if t.endswith("/0")) >= 2
        if not suspicious or end - start < 5:
            return plain, problem, False
        alt, alt_problem = self.parse(buf, start, end, afi, safi, True)
        if alt_problem is None and alt:
            return alt, None, True
        return plain, problem, False
