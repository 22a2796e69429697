"""Split an Avro object container file into smaller, complete container files.

The embedded warehouse reads Avro with a columnar reader (polars, native code) instead of
decoding row by row in Python (fastavro: about 30 us a row, most of a load's time). That
reader takes a whole container at once; to keep memory bounded whatever the file's size,
the file is cut at block boundaries into chunks of about ``max_rows`` rows, each given
the original header, so every chunk is a valid container of the same schema and codec.
Blocks are copied, not decoded; only the header and the two counts in front of every
block are parsed (Avro 1.11 specification, "Object Container Files").

:class:`ContainerReader` also hands out the blocks themselves, for the C decoder of
``avro_columns`` (which needs the header's schema and codec from ``meta``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final

MAGIC: Final = b"Obj\x01"
SYNC_SIZE: Final = 16
_READ_PIECE: Final = 16 << 20


class AvroContainerError(ValueError):
    """The bytes are not a well-formed Avro container file; the message names the byte offset."""


class _Reader:
    """Byte reader that keeps the offset (for errors) and a copy of what it read (the header)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.offset = 0

    def read(self, n: int, what: str) -> bytes:
        if n <= _READ_PIECE:
            b = self.f.read(n)
        else:
            # A size from a damaged file must not size one allocation: file objects
            # allocate the whole n before reading. Pieces stop at the end of the input.
            parts = []
            left = n
            while left and (piece := self.f.read(min(left, _READ_PIECE))):
                parts.append(piece)
                left -= len(piece)
            b = b"".join(parts)
        if len(b) != n:
            raise AvroContainerError(f"Avro container truncated in {what} at byte {self.offset + len(b)}")
        self.offset += n
        return b

    def long(self, what: str) -> tuple[int, bytes]:
        """A zig-zag varint long and its raw bytes; end of input is an error."""
        got = self.long_or_eof(what)
        if got is None:
            raise AvroContainerError(f"Avro container truncated in {what} at byte {self.offset}")
        return got

    def long_or_eof(self, what: str) -> tuple[int, bytes] | None:
        """As :meth:`long`, but ``None`` when the input ends before the first byte."""
        raw = bytearray()
        shift = 0
        value = 0
        while True:
            b = self.f.read(1)
            if not b and not raw:
                return None
            if not b:
                raise AvroContainerError(f"Avro container truncated in {what} at byte {self.offset}")
            self.offset += 1
            raw += b
            value |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                break
            shift += 7
            if shift > 63:
                raise AvroContainerError(f"Avro varint too long in {what} at byte {self.offset}")
        return (value >> 1) ^ -(value & 1), bytes(raw)


def _header(r: _Reader, meta: dict[str, bytes] | None = None) -> bytes:
    """The header's bytes; its metadata entries go into ``meta`` when given."""
    out = bytearray(r.read(4, "magic"))
    if bytes(out) != MAGIC:
        raise AvroContainerError("not an Avro container file (bad magic at byte 0)")
    while True:  # metadata map: blocks of entries, a zero count ends it
        count, raw = r.long("header map")
        out += raw
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _, raw = r.long("header map")
            out += raw
        kv: list[bytes] = []
        for _ in range(count * 2):  # key then value, both length-prefixed bytes
            n, raw = r.long("header map")
            if n < 0:
                raise AvroContainerError(f"negative length in the header map at byte {r.offset}")
            b = r.read(n, "header map")
            out += raw + b
            kv.append(b)
        if meta is not None:
            for k, v in zip(kv[::2], kv[1::2], strict=True):
                meta[k.decode("utf-8", "replace")] = v
    out += r.read(SYNC_SIZE, "header sync marker")
    return bytes(out)


class ContainerReader:
    """An Avro container file read block by block: the header at construction, then
    :meth:`blocks` (raw, still compressed block data) or :meth:`chunks`."""

    def __init__(self, f: BinaryIO) -> None:
        self._r = _Reader(f)
        self.meta: dict[str, bytes] = {}
        self.header = _header(self._r, self.meta)
        self.sync = self.header[-SYNC_SIZE:]

    def _next_block(self) -> tuple[int, bytes, bytes, bytes] | None:
        """``(count, raw count, raw size, data)`` of the next block, ``None`` at the end.

        The sync marker after the block is checked, so a damaged file fails here with
        its byte offset.
        """
        r = self._r
        got = r.long_or_eof("block count")
        if got is None:
            return None
        count, raw_count = got
        size, raw_size = r.long("block size")
        if count < 0 or size < 0:
            raise AvroContainerError(f"negative block count or size at byte {r.offset}")
        data = r.read(size, "block data")
        if r.read(SYNC_SIZE, "block sync marker") != self.sync:
            raise AvroContainerError(f"Avro sync marker mismatch at byte {r.offset - SYNC_SIZE}")
        return count, raw_count, raw_size, data

    def blocks(self) -> Iterator[tuple[int, int, bytes]]:
        """``(record count, byte offset of the block in the file, block data)`` in file order."""
        while True:
            at = self._r.offset
            got = self._next_block()
            if got is None:
                return
            yield got[0], at, got[3]

    def chunks(self, max_rows: int) -> Iterator[tuple[int, bytes]]:
        """See :func:`iter_container_chunks`."""
        header = self.header
        parts: list[bytes] = [header]
        rows = 0
        while (got := self._next_block()) is not None:
            count, raw_count, raw_size, data = got
            if rows and rows + count > max_rows:
                yield rows, b"".join(parts)
                parts, rows = [header], 0
            parts += (raw_count, raw_size, data, self.sync)
            rows += count
        if rows:
            yield rows, b"".join(parts)


def iter_container_chunks(f: BinaryIO, max_rows: int) -> Iterator[tuple[int, bytes]]:
    """``(rows, container bytes)`` of consecutive runs of blocks holding at most about ``max_rows`` rows.

    A single block larger than ``max_rows`` becomes a chunk of its own. The sync marker
    after every block is checked, so a damaged file fails here with its byte offset.
    """
    yield from ContainerReader(f).chunks(max_rows)
