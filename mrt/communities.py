"""Community attributes: standard (RFC 1997), extended (RFC 4360 / 5701) and large (RFC 8092).

Standard communities are always numeric ``"asn:value"`` (bgpdump prints the three
well-known ones by name; the tests translate). Extended communities are the
lowercase hex of each 8-byte value (20 bytes for IPv6-address-specific ones).
"""

from __future__ import annotations

import struct
from typing import Final

_STD_CACHE: dict[int, struct.Struct] = {}


class CommunityError(ValueError):
    """Attribute length is not a multiple of the member size."""


def _u32s(n: int) -> struct.Struct:
    s = _STD_CACHE.get(n)
    if s is None:
        s = struct.Struct(">" + "I" * n)
        _STD_CACHE[n] = s
    return s


def standard(data: bytes) -> list[str]:
    if len(data) % 4:
        raise CommunityError(f"COMMUNITIES length {len(data)} not a multiple of 4")
    return [f"{v >> 16}:{v & 0xFFFF}" for v in _u32s(len(data) // 4).unpack(data)]


def large(data: bytes) -> list[str]:
    if len(data) % 12:
        raise CommunityError(f"LARGE_COMMUNITY length {len(data)} not a multiple of 12")
    vals = _u32s(len(data) // 4).unpack(data)
    return [f"{vals[i]}:{vals[i + 1]}:{vals[i + 2]}" for i in range(0, len(vals), 3)]


EXT_SIZE: Final = 8
IPV6_EXT_SIZE: Final = 20


def extended(data: bytes, size: int = EXT_SIZE) -> list[str]:
    if len(data) % size:
        raise CommunityError(f"extended community length {len(data)} not a multiple of {size}")
    return [data[i : i + size].hex() for i in range(0, len(data), size)]
